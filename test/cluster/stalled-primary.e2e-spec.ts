import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from 'nestjs-riverside/testing';
import { uniquePrefix } from '../support/brokers.js';
import { type NodeProcess, startNodeProcess } from '../support/node-process.js';

const WORKERS_APP = fileURLToPath(new URL('./fixtures/workers.mjs', import.meta.url));
/** Longer than the relay's 2 s bound on an unconfirmed subscription. */
const STALL_MS = 3000;

// A reconnect storm on few cores starves the primary (bench/PROFILE.md, "Reconnect storm: the
// subscription acks"): the IpcHub answers late, not never. Here the primary is stopped outright
// (SIGSTOP); the workers accept their own connections (schedulingPolicy 'none') and go on.
describe('IpcTransport, when the cluster primary stalls longer than 2 s', () => {
  let app: NodeProcess;
  const clients: TestClient[] = [];
  /** What the processes logged: Nest writes errors on stderr, warnings on stdout. */
  let stdout = '';
  const logs = () => `${stdout}${app.stderr()}`;

  beforeAll(async () => {
    app = await startNodeProcess(WORKERS_APP, { WORKERS: '2', SCHEDULING: 'none', RIVERSIDE_PREFIX: uniquePrefix('stalled-primary') }, 20_000);
    createInterface({ input: app.child.stdout! }).on('line', (line) => (stdout += `${line}\n`));
  }, 30_000);

  afterAll(async () => {
    app?.child.kill('SIGCONT');
    for (const client of clients) client.ws.terminate();
    await app?.stop(8000);
  });

  async function connect(user: string): Promise<{ client: TestClient; pid: number }> {
    const client = await TestClient.connect(`${app.url}?user=${user}`);
    clients.push(client);
    client.send({ whoami: true });
    const { pid } = (await client.expectMessage(15_000)) as { pid: number };
    return { client, pid };
  }

  it('starts a new session only once the hub holds its subscription, reachable from the other worker, and logs no failure', async () => {
    app.child.kill('SIGSTOP');
    let primaryStopped = true;
    const resume = setTimeout(() => {
      primaryStopped = false;
      app.child.kill('SIGCONT');
    }, STALL_MS);
    try {
      const late = await connect('late');
      expect(primaryStopped, 'the session started while the hub could not hold its subscription').toBe(false);

      let sender: { client: TestClient; pid: number };
      let attempts = 0;
      do {
        sender = await connect(`sender${attempts}`);
        if (++attempts > 80) throw new Error('no connection landed on the other worker');
      } while (sender.pid === late.pid);
      sender.client.send({ deliver: { user: 'late' }, message: { hello: 'late' } });
      expect(await late.client.expectMessage()).toEqual({ hello: 'late' });
    } finally {
      clearTimeout(resume);
      app.child.kill('SIGCONT');
    }
    expect(logs()).not.toContain('Cluster transport failed');
    expect(logs()).toContain('Cluster transport slow: the subscription to user:late is not confirmed after 2000 ms');
  }, 30_000);
});
