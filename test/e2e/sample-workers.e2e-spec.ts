import { execFile } from 'node:child_process';
import { cpSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from 'nestjs-riverside/testing';
import { freePort } from '../support/brokers.js';
import { type NodeProcess, startNodeProcess } from '../support/node-process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// Issue 11, point 4: `WORKERS=2 npm start` is the sample chat on two processes, one port, one chat.
describe('the sample chat with WORKERS=2', () => {
  let sample: NodeProcess;
  let port: number;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
    // What `npm start` does before running it: compile, and put the page next to it.
    await promisify(execFile)(process.execPath, [tsc, '-p', 'sample/tsconfig.json'], { cwd: ROOT, timeout: 60_000 });
    cpSync(join(ROOT, 'sample/public'), join(ROOT, 'sample/dist/public'), { recursive: true });
    port = await freePort();
    // The sample prints no JSON line: a wrapper reports {"url"} once both workers have said they listen.
    sample = await startNodeProcess(
      fileURLToPath(new URL('../support/sample-workers.mjs', import.meta.url)),
      { WORKERS: '2', PORT: String(port), SAMPLE_MAIN: join(ROOT, 'sample/dist/main.js') },
      30_000,
    );
  }, 90_000);

  afterAll(async () => {
    for (const client of clients) client.ws.terminate();
    if (sample) expect(await sample.stop(8000)).toEqual({ code: 0, signal: null, forced: false });
  });

  async function connect(name: string): Promise<TestClient> {
    const client = await TestClient.connect(`ws://127.0.0.1:${port}/chat`, { query: { name } });
    clients.push(client);
    expect(await client.expectMessage()).toMatchObject({ welcome: name });
    return client;
  }

  it('serves every user from either worker and carries a message between them', async () => {
    expect(new URL(sample.url).port).toBe(String(port));
    const ann = await connect('ann');
    // Two devices of bob, connected one after the other: the primary hands them to different
    // workers, so at least one is not on ann's.
    const bobs = [await connect('bob'), await connect('bob')];
    ann.send({ say: 'hi', toUser: 'bob' });
    // Each device gets it after the lobby's join events, in whatever order they interleave.
    for (const bob of bobs) {
      const seen: unknown[] = [];
      while (!seen.some((message) => (message as { say?: unknown }).say === 'hi')) seen.push(await bob.expectMessage(3000));
      expect(seen.at(-1)).toMatchObject({ from: 'ann', toUser: 'bob', say: 'hi' });
    }
  });
});
