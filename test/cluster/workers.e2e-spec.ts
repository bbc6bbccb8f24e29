import { get } from 'node:http';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from 'nestjs-riverside/testing';
import { uniquePrefix } from '../support/brokers.js';
import { type NodeProcess, startNodeProcess } from '../support/node-process.js';
import { REDIS_URL, redisAvailable } from '../support/redis.js';
import { eventually } from '../support/riverside-app.js';

// STYLE 18: skipped (loudly) only outside CI when Redis is unreachable; under CI this throws.
const redisUp = await redisAvailable();
const WORKERS_APP = fileURLToPath(new URL('./fixtures/workers.mjs', import.meta.url));

interface Placed {
  readonly client: TestClient;
  /** The worker process serving the connection. */
  readonly pid: number;
}

/** GET /deliver on a fresh TCP connection (no keep-alive: each request may land on another worker). */
function httpDeliver(url: string, user: string, text: string): Promise<{ pid: number; delivered: number }> {
  const { port } = new URL(url);
  const path = `/deliver?user=${encodeURIComponent(user)}&text=${encodeURIComponent(text)}`;
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(`HTTP ${res.statusCode}: ${body}`))));
    }).on('error', reject);
  });
}

function describeWorkers(transport: 'ipc' | 'redis', workers: number, mode: 'standalone' | 'http', schedulingPolicy?: 'none'): void {
  const accepting = schedulingPolicy === 'none' ? ', each accepting its own connections' : '';
  // With schedulingPolicy 'none' the kernel picks the worker: no even spread, more tries to reach each.
  const maxAttempts = schedulingPolicy === 'none' ? 40 * workers : 4 * workers;
  describe(`${workers} workers on one port${accepting}, ${mode === 'http' ? "port: 'http'" : 'standalone'}, over ${transport === 'ipc' ? 'the embedded IpcTransport' : 'Redis'}`, () => {
    let app: NodeProcess;
    /** pids of the workers that reported listening since the app started (replacements included). */
    const listening: number[] = [];
    const clients: TestClient[] = [];

    beforeAll(async () => {
      app = await startNodeProcess(
        WORKERS_APP,
        {
          WORKERS: String(workers),
          RIVERSIDE_TRANSPORT: transport,
          MODE: mode,
          REDIS_URL,
          RIVERSIDE_PREFIX: uniquePrefix(`workers-${transport}`),
          ...(schedulingPolicy && { SCHEDULING: schedulingPolicy }),
        },
        20_000,
      );
      createInterface({ input: app.child.stdout! }).on('line', (line) => {
        try {
          const { listening: pid } = JSON.parse(line) as { listening?: unknown };
          if (typeof pid === 'number') listening.push(pid);
        } catch {
          // Not one of the fixture's JSON lines.
        }
      });
    }, 30_000);

    afterAll(async () => {
      for (const client of clients) client.ws.terminate();
      const exit = await app?.stop(8000);
      expect(exit?.forced).toBe(false);
    });

    async function connect(user: string): Promise<Placed> {
      const client = await TestClient.connect(`${app.url}?user=${user}`);
      clients.push(client);
      client.send({ whoami: true });
      const { pid } = (await client.expectMessage()) as { pid: number };
      return { client, pid };
    }

    /** One connection per user, each on a worker none of the others is on. */
    async function onDistinctWorkers(users: string[]): Promise<Placed[]> {
      const placed: Placed[] = [];
      for (const user of users) {
        for (let attempt = 0; ; attempt++) {
          const candidate = await connect(user);
          if (!placed.some(({ pid }) => pid === candidate.pid)) {
            placed.push(candidate);
            break;
          }
          candidate.client.ws.close();
          if (attempt > maxAttempts) throw new Error(`no connection of ${user} landed on a new worker`);
        }
      }
      return placed;
    }

    it(`runs ${workers} worker processes on one port`, async () => {
      const placed = await onDistinctWorkers(Array.from({ length: workers }, (_, i) => `w${i}`));
      expect(new Set(placed.map(({ pid }) => pid)).size).toBe(workers);
      expect(placed.every(({ pid }) => pid !== app.child.pid)).toBe(true);
    });

    it("delivers to a user on worker A from worker B's handler", async () => {
      const [ann, bob] = await onDistinctWorkers(['ann', 'bob']);
      bob.client.send({ deliver: { user: 'ann' }, message: { hi: 'from B' } });
      expect(await bob.client.expectMessage()).toEqual({ delivered: 0, pid: bob.pid });
      expect(await ann.client.expectMessage()).toEqual({ hi: 'from B' });
      await ann.client.expectNoMessage(100);
    });

    it('broadcasts to channel members on every worker, each once', async () => {
      const members = await onDistinctWorkers(Array.from({ length: workers }, (_, i) => `member${i}`));
      for (const { client } of members) {
        client.send({ join: 'room' });
        expect(await client.expectMessage()).toEqual({ joined: 'room' });
      }
      const [sender, ...others] = members;
      // A join answers before the other workers' hub subscription holds (as on Redis): probe
      // until every member is reachable, then drop the probes.
      await eventually(async () => {
        sender.client.send({ deliver: { channel: 'room' }, message: { probe: true } });
        expect(await sender.client.expectMessages(2)).toEqual([{ probe: true }, { delivered: 1, pid: sender.pid }]);
        for (const { client } of others) expect(await client.expectMessage(300)).toEqual({ probe: true });
      }, 10_000);
      for (const { client } of others) {
        for (;;) {
          try {
            await client.expectMessage(200);
          } catch {
            break;
          }
        }
      }
      sender.client.send({ deliver: { channel: 'room' }, message: { say: 'hi all' } });
      expect(await sender.client.expectMessages(2)).toEqual([{ say: 'hi all' }, { delivered: 1, pid: sender.pid }]);
      for (const { client } of others) expect(await client.expectMessage()).toEqual({ say: 'hi all' });
      for (const { client } of members) await client.expectNoMessage(100);
    });

    if (mode === 'http') {
      it('delivers to a user on worker A from an HTTP controller served by worker C', async () => {
        const [cat, , ] = await onDistinctWorkers(['cat', 'dan', 'eve']);
        const servedBy: number[] = [];
        for (let i = 0; !servedBy.some((pid) => pid !== cat.pid) || servedBy.length < 2; i++) {
          if (i > maxAttempts) throw new Error(`no HTTP request landed on a worker other than ${cat.pid}: ${servedBy.join(', ')}`);
          const answer = await httpDeliver(app.url, 'cat', `n${i}`);
          servedBy.push(answer.pid);
          expect(answer.delivered).toBe(answer.pid === cat.pid ? 1 : 0);
          expect(await cat.client.expectMessage()).toEqual({ text: `n${i}`, via: 'http' });
        }
        await cat.client.expectNoMessage(100);
      });
    }

    if (mode === 'standalone') {
      it('replaces a killed worker; its clients reconnect and are reached from the other workers', async () => {
        const [fay, gus] = await onDistinctWorkers(['fay', 'gus']);
        const before = listening.length;
        process.kill(fay.pid, 'SIGKILL');
        expect((await fay.client.expectClose()).code).toBe(1006);
        await eventually(() => expect(listening.length).toBe(before + 1), 10_000);
        const replacement = listening[listening.length - 1];
        expect([fay.pid, gus.pid]).not.toContain(replacement);

        // fay reconnects, until she lands on the new worker; gus reaches her there.
        let again: Placed;
        for (let attempt = 0; ; attempt++) {
          again = await connect('fay');
          if (again.pid === replacement) break;
          again.client.ws.close();
          if (attempt > maxAttempts) throw new Error('no reconnection landed on the replacement worker');
        }
        gus.client.send({ deliver: { user: 'fay' }, message: { welcome: 'back' } });
        expect(await gus.client.expectMessage()).toEqual({ delivered: 0, pid: gus.pid });
        expect(await again.client.expectMessage()).toEqual({ welcome: 'back' });
      }, 20_000);

      it('stops on SIGTERM to the primary: every worker closes its sessions with 1001, then all exit', async () => {
        const placed = await onDistinctWorkers(['hal', 'ida']);
        const exit = await app.stop(8000);
        expect(exit).toEqual({ code: 0, signal: null, forced: false });
        for (const { client } of placed) expect((await client.expectClose()).code).toBe(1001);
        for (const { pid } of placed) expect(() => process.kill(pid, 0)).toThrow();
      });
    }
  });
}

describeWorkers('ipc', 2, 'standalone');
describeWorkers('ipc', 3, 'http');
describeWorkers('ipc', 2, 'standalone', 'none');
describe.runIf(redisUp)('on Redis', () => {
  describeWorkers('redis', 3, 'http');
});
