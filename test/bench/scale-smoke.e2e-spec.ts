import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// Issue 11: `npm run bench:scale` scaled down (2 workers, 2,000 connections, IpcTransport), so the
// benchmark cannot rot, with the like-for-like baseline (the same workers each on LocalTransport). The figures are not asserted (the machine is shared); what every client
// observes is: every connection opened, every delivery arrived, and SIGTERM closed every session
// with 1001; and in a small reconnect storm (3 workers, 1,000 connections, one worker killed),
// every client came back and every delivery to the connected users arrived.
describe('npm run bench:scale (smoke)', () => {
  it('runs 2 workers with 2,000 connections and loses nothing', async () => {
    // bench/dist/ is compiled once per run, by the suite's global setup (test/support/build-once.ts).
    const out = join(tmpdir(), `scale-smoke-${process.pid}.json`);
    await run(process.execPath, ['bench/dist/scale.js'], { cwd: ROOT, timeout: 110_000, env: { ...process.env, SCALE_SMOKE: '1', SCALE_OUT: out } });

    const results = JSON.parse(readFileSync(out, 'utf8'));
    const [ipc] = results.runs;
    expect(ipc).toMatchObject({ transport: 'ipc', workers: 2, connections: 2000 });
    expect(ipc.perWorker.map((w: { connections: number }) => w.connections).reduce((a: number, b: number) => a + b, 0)).toBe(2000);
    for (const row of ipc.rates) {
      expect(row.sent).toBeGreaterThan(0);
      expect(row.received).toBe(row.sent);
      expect(row.missedTargets).toBe(0);
      // The first rate is measured in rounds (2 in the smoke): the row's p99 is their median.
      expect(row.rounds).toBe(2);
      expect(row.p99ByRound).toHaveLength(2);
      expect(row.p99).toBe((row.p99ByRound[0] + row.p99ByRound[1]) / 2);
    }
    expect(ipc.rates.map((row: { where: string }) => row.where)).toEqual(['local', 'remote']);
    expect(ipc.fanout.deliveries).toBe(1000 * 5);
    expect(ipc.drain.closeCodes['1001']).toBe(2000);
    // The like-for-like baseline: the same 2 workers each on LocalTransport, delivering to their own users.
    expect(results.localWorkers).toMatchObject({ transport: '2 workers, LocalTransport', where: 'local', missedTargets: 0 });
    expect(results.localWorkers.sent).toBeGreaterThan(0);
    expect(results.localWorkers.received).toBe(results.localWorkers.sent);
    // Single-process raw ws fan-out, the scaling rows' reference: every member got every broadcast.
    expect(results.rawWs).toMatchObject({ members: 500, broadcasts: 25, deliveries: 500 * 25 });
    // The storm: the killed worker's clients back, the others untouched, the survivors' deliveries
    // to one another's users all arrived (timed), and the new sessions' wait for @OnInit timed.
    const { storm } = results;
    expect(storm).toMatchObject({ workers: 3, expected: 1000, stillOpen: 1000, otherWorkersDropped: 0 });
    expect(storm.deliveries.sent).toBeGreaterThan(0);
    expect(storm.deliveries).toMatchObject({ lost: 0, missedTargets: 0, received: storm.deliveries.sent });
    expect(storm.deliveries.p99).toBeGreaterThan(0);
    expect(storm.initWait.sessions).toBeGreaterThanOrEqual(storm.killedConnections);
    expect(storm.initWait.p99).toBeGreaterThan(0);
  }, 180_000);
});
