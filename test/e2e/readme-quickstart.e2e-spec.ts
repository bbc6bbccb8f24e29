import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HandshakeRefusedError, TestClient } from 'nestjs-riverside/testing';
import { freePort } from '../support/brokers.js';
import { CJS_MAIN, compileApp, VITEST_E2E_CONFIG, type ModuleType, packProject, scaffoldApp } from '../support/nest-scaffold.js';

// The README's Quick start as a newcomer uses it: its files written verbatim into the project
// `nest new` generates, compiled by `tsc` against the package as npm would install it (packed
// from this repository), then run with `node dist/main.js` and driven over a real socket.
// Any block that stops compiling or behaving fails this file.

const README = fileURLToPath(new URL('../../README.md', import.meta.url));

/** The ```ts blocks of a README section, by the path in their first line. */
function readmeFiles(heading: string): Map<string, string> {
  const readme = readFileSync(README, 'utf8');
  const start = readme.indexOf(`## ${heading}\n`);
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  const files = new Map<string, string>();
  for (const [, code] of section.matchAll(/```ts\n([\s\S]*?)```/g)) {
    const name = /^\/\/ (\S+\.ts)\n/.exec(code)?.[1];
    if (name) files.set(name, code);
  }
  return files;
}

/** Waits until the app answers a WebSocket handshake on `url` (any answer, a refusal included). */
async function waitUntilServing(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the app exited with ${child.exitCode}:\n${output()}`);
    try {
      await TestClient.expectRefused(url);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`the app did not serve ${url} within 15 s:\n${output()}`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

describe('the README quick start', () => {
  const files = readmeFiles('Quick start');
  const testFiles = readmeFiles('Testing your handlers');
  const workdir = mkdtempSync(join(tmpdir(), 'riverside-quickstart-'));
  const apps: string[] = [];
  const children: ChildProcess[] = [];
  let tarball: string;
  const urls = new Map<ModuleType, string>();
  const appDirs = new Map<ModuleType, string>();

  beforeAll(async () => {
    tarball = await packProject(workdir);
    // Both scaffolds compile and boot side by side: most of this file's time is tsc and Nest's boot.
    const types = ['esm', 'cjs'] as const;
    const started = await Promise.all(types.map((type) => start(type)));
    types.forEach((type, i) => urls.set(type, started[i]!));
  }, 90_000);

  afterAll(async () => {
    for (const child of children) {
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    }
    for (const dir of [workdir, ...apps]) rmSync(dir, { recursive: true, force: true });
  });

  it('has the three files of an app, each a complete file, and a test of it', () => {
    expect([...files.keys()]).toEqual(['src/echo.handler.ts', 'src/app.module.ts', 'src/main.ts']);
    expect([...testFiles.keys()]).toEqual(['test/echo.e2e-spec.ts']);
  });

  /** Compiles and starts one scaffold; resolves with the WebSocket URL of the echo handler. */
  async function start(type: ModuleType): Promise<string> {
    const sources = Object.fromEntries(files);
    // The CommonJS template keeps its own main.ts; the handler and the module are the README's.
    if (type === 'cjs') sources['src/main.ts'] = CJS_MAIN;
    // The ESM scaffold also gets the README's test, next to the template's Vitest e2e config.
    if (type === 'esm') Object.assign(sources, Object.fromEntries(testFiles), { 'vitest.config.e2e.ts': VITEST_E2E_CONFIG });
    const app = await scaffoldApp(type, tarball, sources);
    apps.push(app);
    appDirs.set(type, app);
    await compileApp(app);
    const port = await freePort();
    const child = spawn(process.execPath, ['dist/main.js'], { cwd: app, env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const url = `ws://127.0.0.1:${port}/ws`;
    await waitUntilServing(url, child, () => output);
    return url;
  }

  describe.each(['esm', 'cjs'] as const)('in the %s app `nest new` generates', (type) => {
    let url: string;
    beforeAll(() => {
      url = urls.get(type)!;
    });

    it('refuses a client without credentials with 401 and the Basic challenge', async () => {
      const refusal = await TestClient.expectRefused(url);
      expect(refusal).toBeInstanceOf(HandshakeRefusedError);
      expect(refusal.status).toBe(401);
      expect(refusal.headers['www-authenticate']).toBe('Basic realm="example.org"');
    });

    it('refuses a wrong password with 401', async () => {
      const refusal = await TestClient.expectRefused(url, { basic: { username: 'alice', password: 'wrong' } });
      expect(refusal.status).toBe(401);
    });

    it('echoes to alice what the README shows', async () => {
      const client = await TestClient.connect(url, { basic: { username: 'alice', password: 'secret' } });
      client.send({ hello: 'world' });
      expect(await client.expectMessage()).toEqual({ echo: { hello: 'world' }, from: 'alice' });
      client.ws.terminate();
    });
  });

  it("passes the README's example test, run as `npm run test:e2e` runs it in the ESM scaffold", async () => {
    await compileApp(appDirs.get('esm')!, 'tsconfig.json'); // the test compiles, too
    const vitest = join(appDirs.get('esm')!, 'node_modules', 'vitest', 'vitest.mjs');
    const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(process.execPath, [vitest, 'run', '--config', './vitest.config.e2e.ts'], {
        cwd: appDirs.get('esm')!,
        env: { ...process.env, CI: '1', NO_COLOR: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let output = '';
      child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.on('exit', (code) => resolve({ code, output }));
    });
    expect(result.output).toMatch(/Tests\s+2 passed \(2\)/);
    expect(result.code).toBe(0);
  }, 60_000);
});
