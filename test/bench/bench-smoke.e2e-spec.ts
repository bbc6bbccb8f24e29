import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { benchFiles, childOutput, ROOT } from '../support/bench-files.js';
import { natsAvailable } from '../support/nats.js';
import { redisAvailable } from '../support/redis.js';

// `npm run bench` (bench/run.ts) at BENCH_SMOKE's tiny scale, into a directory of its own, so that
// the benchmark cannot rot unnoticed. Figures are not asserted (the machine is shared); what a
// user of the script relies on is: it exits 0, every scenario gave every contender its rows,
// nothing was lost on the way (each echo counted, each fan-out delivery arrived, each connection
// opened, the memory figures came from the connections asked for), the report has its tables,
// and the published results under bench/ are left alone.
/** What this test reads of bench/report.ts's Results (the file a user of the script gets). */
interface Results {
  smoke: boolean;
  errors: string[];
  carriedOver?: unknown;
  settings: {
    echo: { payloadBytes: number[]; rounds: number };
    fanout: { members: number[]; inFlight: number[]; bursts: number };
    connect: { connections: number; rounds: number };
    memory: { connections: number };
  };
  echo: { contender: string; payloadBytes: number; rates: number[]; closed: number }[];
  fanout: { contender: string; members: number; inFlight: number; broadcasts: number; rates: number[]; deliveries: number; received: number }[];
  connect: { contender: string; connections: number; rates: number[] }[];
  memory: { contender: string; connections: number; heapPerConnection: number; externalPerConnection: number; rssPerConnection: number }[];
  micro: { name: string; rawOpsPerSec: number; riversideOpsPerSec: number }[];
}

const brokers = { redis: await redisAvailable(), nats: await natsAvailable() };
// The memory scenario's cluster-transport contenders need the shared brokers; outside CI a
// missing broker leaves its contender out (loudly, see service-gate.ts).
const contenders = ['raw-ws-framed', 'riverside', 'nest-ws', 'socket.io', ...(brokers.redis ? ['riverside-redis'] : []), ...(brokers.nats ? ['riverside-nats'] : [])];

describe('npm run bench (smoke)', () => {
  const out = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('measures every scenario for every contender, loses nothing and writes its report outside bench/', async () => {
    const before = benchFiles();
    await promisify(execFile)(process.execPath, ['bench/dist/run.js'], {
      cwd: ROOT,
      env: { ...process.env, BENCH_SMOKE: '1', BENCH_OUT: out, BENCH_CONTENDERS: contenders.join(',') },
      timeout: 120_000,
    }).catch((error: unknown) => {
      throw new Error(`npm run bench (BENCH_SMOKE=1) failed: ${childOutput(error)}`);
    });

    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as Results;
    expect(results.errors).toEqual([]);
    expect(results.smoke).toBe(true);
    expect(results.carriedOver).toBeUndefined();
    const { settings } = results;

    // 13.1 echo: each contender, each payload; every round counted responses (the load generator
    // checks the first response of every connection against what it sent, and fails otherwise).
    const echoContenders = ['raw-ws', 'riverside', 'nest-ws', 'socket.io'];
    expect(results.echo.map((row) => `${row.contender} ${row.payloadBytes}`).sort()).toEqual(
      settings.echo.payloadBytes.flatMap((bytes) => echoContenders.map((id) => `${id} ${bytes}`)).sort(),
    );
    for (const row of results.echo) {
      expect(row.rates).toHaveLength(settings.echo.rounds);
      for (const rate of row.rates) expect(rate).toBeGreaterThan(0);
      expect(row.closed, `${row.contender}: echo connections closed under load`).toBe(0);
    }

    // 13.2 fan-out: each contender with a broadcast, each channel size and broadcasts in flight;
    // every member got every broadcast of every burst.
    const fanoutContenders = ['raw-ws', 'raw-ws-framed', 'riverside', 'socket.io'];
    expect(results.fanout.map((row) => `${row.contender} ${row.members} x${row.inFlight}`).sort()).toEqual(
      settings.fanout.members.flatMap((members) =>
        fanoutContenders.flatMap((id) => settings.fanout.inFlight.map((inFlight) => `${id} ${members} x${inFlight}`)),
      ).sort(),
    );
    for (const row of results.fanout) {
      expect(row.deliveries).toBe(row.broadcasts * row.members * (settings.fanout.bursts + 1));
      expect(row.received, `${row.contender} x${row.inFlight}: deliveries received`).toBe(row.deliveries);
      expect(row.rates).toHaveLength(settings.fanout.bursts);
    }

    // Connect rate: every connection of every round opened (the orchestrator fails a round otherwise).
    expect(results.connect.map((row) => row.contender).sort()).toEqual(['raw-ws', 'riverside']);
    for (const row of results.connect) {
      expect(row.connections).toBe(settings.connect.connections);
      expect(row.rates).toHaveLength(settings.connect.rounds);
      for (const rate of row.rates) expect(rate).toBeGreaterThan(0);
    }

    // 13.3 idle memory: every contender, its per-connection figures over the connections asked for.
    expect(results.memory.map((row) => row.contender).sort()).toEqual(['raw-ws', ...contenders.filter((id) => id !== 'raw-ws-framed')].sort());
    for (const row of results.memory) {
      expect(row.connections).toBe(settings.memory.connections);
      for (const figure of [row.heapPerConnection, row.externalPerConnection, row.rssPerConnection]) expect(Number.isFinite(figure)).toBe(true);
    }

    // Micro-benchmarks: both sides of every one measured.
    expect(results.micro.length).toBeGreaterThan(0);
    for (const row of results.micro) {
      expect(row.rawOpsPerSec, row.name).toBeGreaterThan(0);
      expect(row.riversideOpsPerSec, row.name).toBeGreaterThan(0);
    }

    // The report, with a table per scenario, and the chart.
    const report = readFileSync(join(out, 'RESULTS.md'), 'utf8');
    expect(report).toContain('Smoke run (BENCH_SMOKE=1)');
    for (const heading of ['## 13.1 Echo', '## 13.2 Fan-out', '## Connect rate', '## 13.3 Idle memory', '## Micro-benchmarks']) {
      expect(report).toMatch(new RegExp(`${heading}[^\\n]*\\n\\n(.*\\n)*?\\| --- `));
    }
    expect(existsSync(join(out, 'results.svg'))).toBe(true);

    expect(benchFiles()).toEqual(before);
  }, 150_000);
});
