// `npm run bench:scale` (issue 11): Riverside on several cluster workers sharing one port, at
// scale, on this machine's loopback only. Load generators are their own processes, each from its
// own 127.0.0.x source address and choosing its source ports itself (one process may hold 20,000
// files), and every child process stops by itself. The load generators stand in for clients that
// would be on other machines, so they are kept lean: each reads all its sockets into one reused
// buffer (`onread`, see bench/load/wire.ts) and parses the send time from the bytes, with no
// Buffer, string or stream event per frame (bench/PROFILE.md, "The Redis tail, stop 17"). Measures, over IpcTransport and
// over Redis: connections opened and their rate, RSS per connection per worker, cross-worker
// user deliveries at steady rates (p50/p99/p999 and server CPU per delivery, next to deliveries
// that stay on one worker and next to the same workers each on LocalTransport), channel fan-out across workers, and the drain on SIGTERM; then, on a
// cluster of its own with maxHandshakesPerSecond, a reconnect storm after a worker is killed;
// then fan-out throughput with 1
// and 2 workers next to a single-process raw `ws` server. Writes bench/scale-results.json and
// the scale section of bench/RESULTS.md.
//
//   SCALE_SMOKE=1            2 workers, 2,000 connections, 1 s per rate, IpcTransport (and the local-workers
//                            baseline, and raw ws' fan-out to 500 members) only, and a storm of 1,000
//                            connections on 3 workers; writes only SCALE_OUT (the suite's smoke test)
//   SCALE_CONNECTIONS=n      connections of the main run (default 100000)
//   SCALE_REDIS_CONNECTIONS=n  connections of the Redis run (default: SCALE_CONNECTIONS)
//   SCALE_OPEN_BUDGET=s      seconds the load generators may spend opening connections (default 600)
//   SCALE_WORKERS=n          workers of the main run (default 7: 100,000 connections are 14,300 a
//                            worker, and when the storm kills one, the 6 others can take its
//                            clients below maxConnections (19,000); with 6, 5 x 19,000 < 100,000)
//   SCALE_SECONDS=n          seconds per steady rate (default 10)
//   SCALE_ROUNDS=n           windows of SCALE_SECONDS at the first rate (5,000/s), whose percentiles' medians
//                            the row gives (default 3; the other rates run one)
//   SCALE_SCALING_MEMBERS=n  channel members of the 1- and 2-worker and raw ws fan-out runs (default 10000)
//   SCALE_WARMUP_SECONDS=n   seconds of deliveries at the first rate, not measured, before the steady rates (default 1)
//   SCALE_TRANSPORTS=ipc,redis
//   SCALE_PRESENCE=0         the workers run with `presence: false` (default: presence on, as the module's default)
//   SCALE_SCHEDULING=none|round-robin  runRiversideWorkers' schedulingPolicy (default none: each
//                            worker accepts its own connections; round-robin: the primary hands them out)
//   SCALE_STORM_HANDSHAKES=n maxHandshakesPerSecond of every worker in the storm run (default 300)
//   SCALE_STORM_CONNECTIONS=n connections of the storm run (default: SCALE_CONNECTIONS); one
//                            worker's share of them reconnects at once
//   SCALE_STORM_RATE=n       cross-worker deliveries/s to users of the surviving workers during the storm (default 1000)
//   SCALE_STORM_DRIVE_SECONDS=n  for how long after the kill (default 10)
//   SCALE_STORM_ONLY=1       only the storm run (scaled-down storms: with SCALE_WORKERS and
//                            SCALE_STORM_CONNECTIONS); writes only SCALE_OUT
//   SCALE_OUT=path.json      where to write the results (default bench/scale-results.json)
//   SCALE_PROFILE_DIR=dir    `node --cpu-prof` on the cluster's processes, profiles written there on exit
//   SCALE_LOCAL_WORKERS=0    no like-for-like baseline (SCALE_WORKERS workers each on LocalTransport,
//                            SCALE_CONNECTIONS connections, local deliveries at the first rate)
//   SCALE_RATES_ONLY=1       only the steady-rate deliveries (and the single-node baseline): no
//                            fan-out, storm, 2-worker or raw ws run; writes only SCALE_OUT
//   SCALE_TRACE_DIR=dir      record, for the latency tail, every process' GC pauses and the load generators'
//                            samples (send and receive times), and each rate phase's run-queue waits of
//                            the server, the load generators and redis-server; read them with
//                            `node bench/dist/trace-tail.js dir [phase]` (default phase redis-remote-5000-1, the first round)
//   SCALE_SERVER_FLAGS, SCALE_LOAD_FLAGS  extra Node flags (space-separated) of the cluster's
//                            processes (workers inherit the primary's) and of the load generators
//   REDIS_URL                (default redis://127.0.0.1:6379); several, comma-separated, make each
//                            worker's transport a ShardedTransport over them
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Child, freePort, sourceAddress, spawnNode } from './lib/child.js';
import { cpuSecondsOf, sleep, waitsOf } from './lib/process.js';
import { TRACE_DIR } from './lib/trace.js';
import { type RunQueueTrace, traceRunQueues } from './lib/run-queue-trace.js';
import type { ScaleLoadConfig, ScaleLoadReport } from './load/scale.load.js';
import type { ServerReport } from './servers/harness.js';
import type { ScaleReport, ScaleServerConfig, UserRanges, WorkerFigures } from './servers/scale-cluster.server.js';

const DIST = fileURLToPath(new URL('.', import.meta.url));
const BENCH_DIR = join(DIST, '..');
const smoke = process.env.SCALE_SMOKE === '1';
const ratesOnly = process.env.SCALE_RATES_ONLY === '1';
const stormOnly = process.env.SCALE_STORM_ONLY === '1';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Connections per load-generator process (the per-process file limit is 20,000). */
const PER_LOAD_GEN = 17_000;

const SETTINGS = smoke
  ? { workers: 2, connections: 2000, members: 1000, rates: [1000], seconds: 1, rounds: 2, broadcasts: 5, storm: true, stormWorkers: 3, stormHandshakesPerSecond: 200, stormConnections: 1000, stormDriveRate: 200, stormDriveSeconds: 2, scaling: [] as number[], scalingMembers: 500, raw: true, localWorkers: true, warmupSeconds: 1 }
  : {
      workers: Number(process.env.SCALE_WORKERS ?? 7),
      connections: Number(process.env.SCALE_CONNECTIONS ?? 100_000),
      members: Math.min(10_000, Number(process.env.SCALE_CONNECTIONS ?? 100_000)),
      rates: [5000, 20_000],
      seconds: Number(process.env.SCALE_SECONDS ?? 10),
      rounds: Number(process.env.SCALE_ROUNDS ?? 3),
      broadcasts: 20,
      storm: !ratesOnly,
      stormWorkers: Number(process.env.SCALE_WORKERS ?? 7),
      stormHandshakesPerSecond: Number(process.env.SCALE_STORM_HANDSHAKES ?? 300),
      stormConnections: Number(process.env.SCALE_STORM_CONNECTIONS ?? process.env.SCALE_CONNECTIONS ?? 100_000),
      stormDriveRate: Number(process.env.SCALE_STORM_RATE ?? 1000),
      stormDriveSeconds: Number(process.env.SCALE_STORM_DRIVE_SECONDS ?? 10),
      scaling: ratesOnly ? [1] : [1, 2],
      scalingMembers: Number(process.env.SCALE_SCALING_MEMBERS ?? 10_000),
      raw: !ratesOnly,
      localWorkers: process.env.SCALE_LOCAL_WORKERS !== '0',
      warmupSeconds: Number(process.env.SCALE_WARMUP_SECONDS ?? 1),
    };
const SCHEDULING = process.env.SCALE_SCHEDULING === 'round-robin' ? 'round-robin' : 'none';
/** The workers' `presence` option (SCALE_PRESENCE=0: off, no node keeps a copy of the others' sessions). */
const PRESENCE = process.env.SCALE_PRESENCE !== '0';
const TRANSPORTS = (process.env.SCALE_TRANSPORTS ?? (smoke ? 'ipc' : 'ipc,redis')).split(',').filter((t) => t === 'ipc' || t === 'redis') as ('ipc' | 'redis')[];
const MAX_LIFETIME = smoke ? 120_000 : 30 * 60_000;
/** Opening stops after this long: on a busy machine the run reports the connections it has. */
const OPEN_BUDGET_S = Number(process.env.SCALE_OPEN_BUDGET ?? 600);

const profileFlags = process.env.SCALE_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SCALE_PROFILE_DIR}`] : [];
/** Extra Node flags of the cluster's processes (the workers inherit the primary's) and of the load generators (experiments). */
const serverFlags = (process.env.SCALE_SERVER_FLAGS ?? '').split(' ').filter(Boolean);
const loadFlags = (process.env.SCALE_LOAD_FLAGS ?? '').split(' ').filter(Boolean);

const log = (line: string) => console.log(`[bench:scale] ${line}`);

// ---- children ------------------------------------------------------------------------------

interface Cluster {
  child: Child;
  port: number;
  primaryPid: number;
  workers: number;
}

async function startCluster(workers: number, transport: 'ipc' | 'redis' | 'local', maxHandshakesPerSecond?: number, measureInit = false): Promise<Cluster> {
  const port = await freePort();
  const config: ScaleServerConfig = {
    port,
    workers,
    transport,
    redisUrl: REDIS_URL,
    prefix: `bench-scale-${process.pid}-${Date.now()}`,
    maxHandshakesPerSecond,
    schedulingPolicy: SCHEDULING,
    presence: PRESENCE,
    maxLifetimeMs: MAX_LIFETIME,
    measureInit,
  };
  // No pinning: the workers are meant to spread over every core.
  const child = spawnNode(`cluster(${workers}, ${transport})`, join(DIST, 'servers/scale-cluster.server.js'), config, { cpu: -1, nodeFlags: ['--expose-gc', ...serverFlags, ...profileFlags] });
  const ready = await child.next<Extract<ScaleReport, { type: 'ready' }>>('ready', 60_000);
  return { child, port, primaryPid: ready.primaryPid, workers };
}

async function clusterStats(cluster: Cluster, gc = true) {
  cluster.child.send({ type: 'stats', gc });
  return cluster.child.next<Extract<ScaleReport, { type: 'stats' }>>('stats', 30_000);
}

function serverCpu(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + cpuSecondsOf(pid), 0);
}


interface LoadGens {
  children: Child[];
  /** The users connected: `[first id, count]` per load generator (each opens its ids in order). */
  users: UserRanges;
  openRate: number;
  openSeconds: number;
  connected: number;
}

async function openConnections(port: number, path: string, connections: number, members: number, reconnect: boolean): Promise<LoadGens> {
  const count = Math.ceil(connections / PER_LOAD_GEN);
  const children: Child[] = [];
  for (let i = 0; i < count; i++) {
    const share = Math.min(PER_LOAD_GEN, connections - i * PER_LOAD_GEN);
    const config: ScaleLoadConfig = {
      host: '127.0.0.1',
      port,
      path,
      offset: i * PER_LOAD_GEN,
      count: share,
      members: Math.round((members * share) / connections),
      localAddress: sourceAddress(),
      concurrency: 64,
      maxLifetimeMs: MAX_LIFETIME,
      reconnect,
      openDeadlineNs: Number(process.hrtime.bigint()) + OPEN_BUDGET_S * 1e9,
    };
    children.push(spawnNode(`load ${i}`, join(DIST, 'load/scale.load.js'), config, { cpu: -1, nodeFlags: loadFlags }));
  }
  const readies = await Promise.all(children.map((child) => child.next<Extract<ScaleLoadReport, { type: 'ready' }>>('ready', MAX_LIFETIME)));
  const startNs = Math.min(...readies.map((r) => r.startNs));
  const endNs = Math.max(...readies.map((r) => r.endNs));
  const connected = readies.reduce((n, r) => n + r.connected, 0);
  const openSeconds = (endNs - startNs) / 1e9;
  const users: UserRanges = readies.map((r, i) => [i * PER_LOAD_GEN, r.connected]);
  return { children, users, connected, openSeconds, openRate: connected / openSeconds };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function gather(loads: LoadGens) {
  for (const child of loads.children) child.send({ type: 'report' });
  const reports = await Promise.all(loads.children.map((child) => child.next<Extract<ScaleLoadReport, { type: 'latencies' }>>('latencies', 30_000)));
  const micros = reports.flatMap((r) => r.micros).sort((a, b) => a - b);
  return {
    micros,
    open: reports.reduce((n, r) => n + r.open, 0),
    closed: reports.reduce((n, r) => n + r.closed, 0),
    refused: reports.reduce((n, r) => n + r.refused, 0),
    attempts: reports.reduce((n, r) => n + r.attempts, 0),
  };
}

// ---- scenarios -----------------------------------------------------------------------------

/** How often the storm samples the workers' connections and CPU, in ms. */
const STORM_SAMPLE_MS = 500;
/** Users of each surviving worker the deliveries during the storm go to. */
const STORM_TARGETS_PER_WORKER = 200;
/** The storm gives up waiting for every client to be back after this long, in s. */
const STORM_BUDGET_S = 120;

/**
 * Reconnect storm: SIGKILL the first worker (about 1/workers of the connections), whose clients
 * all reconnect at once (honouring Retry-After). Counts the 503s of this phase only, the time
 * until every client is back, the connections the other workers dropped (none expected), and
 * the CPU of each worker over the storm (its busiest STORM_SAMPLE_MS, and on average). Meanwhile
 * the survivors deliver to one another's users (connected throughout) at `stormDriveRate`: their
 * latency and losses are what the storm costs the users who were not cut off. And how long each
 * new session waited from @OnAuthenticate to @OnInit (its subscription to the hub, mostly).
 */
async function reconnectStorm(cluster: Cluster, loads: LoadGens) {
  const before = await gather(loads); // refusals of the opening, not of the storm
  const workers = (await clusterStats(cluster, false)).workers.map((w) => w.pid);
  const startedAt = Date.now();
  cluster.child.send({ type: 'kill-worker', sample: STORM_TARGETS_PER_WORKER });
  const killed = await cluster.child.next<Extract<ScaleReport, { type: 'killed' }>>('killed', 60_000);
  for (const child of loads.children) child.send({ type: 'measure' });
  cluster.child.send({ type: 'drive', rate: SETTINGS.stormDriveRate, seconds: SETTINGS.stormDriveSeconds, users: killed.targets, where: 'remote', survivors: true });
  const driven = cluster.child.next<Extract<ScaleReport, { type: 'driven' }>>('driven', (SETTINGS.stormDriveSeconds + 60) * 1000);
  const pids = workers.filter((pid) => pid !== killed.pid);
  const cpuAtKill = pids.map(cpuSecondsOf);
  // The replacement joins the figures once it listens (its boot, before that, is not the storm's).
  let replacement: number | null = null;
  void cluster.child.next<Extract<ScaleReport, { type: 'replaced' }>>('replaced', 60_000).then((r) => (replacement = r.pid), () => {});
  let last = [...cpuAtKill];
  let lastAt = startedAt;
  let peakCpuShare = 0;
  let open = 0;
  while (Date.now() - startedAt < STORM_BUDGET_S * 1000) {
    await sleep(STORM_SAMPLE_MS);
    if (replacement !== null && !pids.includes(replacement)) {
      pids.push(replacement);
      cpuAtKill.push(cpuSecondsOf(replacement));
      last.push(cpuAtKill[cpuAtKill.length - 1]);
    }
    const now = Date.now();
    const cpu = pids.map(cpuSecondsOf);
    for (let i = 0; i < pids.length; i++) peakCpuShare = Math.max(peakCpuShare, (cpu[i] - last[i]) / ((now - lastAt) / 1000));
    [last, lastAt] = [cpu, now];
    // A worker still booting would not answer: the connections are counted once the replacement listens.
    if (replacement === null) continue;
    open = (await clusterStats(cluster, false)).workers.reduce((n, w) => n + w.connections, 0);
    if (open >= loads.connected) break;
  }
  const seconds = (Date.now() - startedAt) / 1000;
  const cpuShares = pids.map((pid, i) => (cpuSecondsOf(pid) - cpuAtKill[i]) / seconds);
  const { sent, missed } = await driven;
  await sleep(1000); // stragglers
  cluster.child.send({ type: 'init-waits' });
  const waits = (await cluster.child.next<Extract<ScaleReport, { type: 'init-waits' }>>('init-waits', 30_000)).waits.sort((a, b) => a - b);
  const after = await gather(loads);
  const { micros } = after;
  const dropped = after.closed - before.closed;
  const result = {
    workers: cluster.workers,
    killedConnections: killed.connections,
    maxHandshakesPerSecond: SETTINGS.stormHandshakesPerSecond,
    seconds,
    refused: after.refused - before.refused,
    attempts: after.attempts - before.attempts,
    stillOpen: open,
    expected: loads.connected,
    dropped,
    otherWorkersDropped: dropped - killed.connections,
    /** The CPU of the busiest worker (survivors and replacement) over the whole storm, in cores. */
    busiestMeanCpuShare: Math.max(...cpuShares),
    /** The most CPU one worker used in one STORM_SAMPLE_MS, in cores. */
    peakCpuShare,
    /** Cross-worker deliveries to users of the surviving workers during the storm (ms). */
    deliveries: {
      rate: SETTINGS.stormDriveRate,
      seconds: SETTINGS.stormDriveSeconds,
      sent,
      /** Deliveries that went to a user of the sending worker (no other target found): not cross-worker. */
      missedTargets: missed,
      received: micros.length,
      lost: sent - micros.length,
      p50: percentile(micros, 50) / 1000,
      p99: percentile(micros, 99) / 1000,
      max: (micros[micros.length - 1] ?? Number.NaN) / 1000,
    },
    /** Sessions opened after the kill: ms from @OnAuthenticate to @OnInit. */
    initWait: { sessions: waits.length, p50: percentile(waits, 50), p99: percentile(waits, 99), max: waits[waits.length - 1] ?? Number.NaN },
  };
  log(
    `storm: killed a worker with ${killed.connections} connections; ${open} of ${loads.connected} open again after ${seconds.toFixed(1)} s, ` +
      `${result.refused} handshakes refused with 503 (${result.attempts} retries), ${result.otherWorkersDropped} other connections dropped, ` +
      `busiest worker ${(result.busiestMeanCpuShare * 100).toFixed(0)}% of a core on average, ${(peakCpuShare * 100).toFixed(0)}% at peak (${STORM_SAMPLE_MS} ms)`,
  );
  const d = result.deliveries;
  const w = result.initWait;
  log(
    `storm: ${d.rate}/s cross-worker deliveries to connected users for ${d.seconds} s: sent ${d.sent}, lost ${d.lost}, p50 ${d.p50.toFixed(1)} ms, p99 ${d.p99.toFixed(1)} ms, max ${d.max.toFixed(1)} ms; ` +
      `${w.sessions} new sessions waited for @OnInit p50 ${w.p50.toFixed(0)} ms, p99 ${w.p99.toFixed(0)} ms, max ${w.max.toFixed(0)} ms`,
  );
  return result;
}

interface RateRow {
  transport: string;
  where: 'remote' | 'local';
  rate: number;
  /** Measured windows of SETTINGS.seconds each; the latency figures are their medians. */
  rounds: number;
  sent: number;
  received: number;
  missedTargets: number;
  achieved: number;
  /** Median over the rounds of each round's percentile (one round: its own). */
  p50: number;
  p99: number;
  p999: number;
  /** Each round's p99, in order. */
  p99ByRound: number[];
  /** p99 of every round's samples pooled. */
  p99Pooled: number;
  max: number;
  cpuMicrosPerDelivery: number;
  /** The same, less the CPU the server spends idle (connections open, nothing delivered) over as long. */
  netCpuMicrosPerDelivery: number;
  /** The part of cpuMicrosPerDelivery spent in the primary (the IpcHub's routing, for IpcTransport). */
  primaryCpuMicrosPerDelivery: number;
  /** Wake-ups of the server processes' event loops (primary and workers) per delivery (waitsOf). */
  wakesPerDelivery: number;
}

/** Server CPU seconds per second with every connection idle and nothing delivered. */
async function idleCpu(pids: number[]): Promise<number> {
  const before = serverCpu(pids);
  const startNs = process.hrtime.bigint();
  await sleep(SETTINGS.seconds * 1000);
  const cpuPerSecond = (serverCpu(pids) - before) / (Number(process.hrtime.bigint() - startNs) / 1e9);
  log(`idle: ${(cpuPerSecond * 1000).toFixed(1)} ms server CPU per second`);
  return cpuPerSecond;
}

/** One measured window of deliveries at `rate`: what was sent, the latencies, the server's CPU. */
async function rateWindow(cluster: Cluster, loads: LoadGens, pids: number[], idle: number, phase: string, rate: number, where: 'remote' | 'local', users: UserRanges) {
  for (const child of loads.children) child.send({ type: 'measure' });
  await sleep(100);
  const cpuBefore = serverCpu(pids);
  const primaryBefore = cpuSecondsOf(pids[0]);
  const waitsBefore = pids.reduce((n, pid) => n + waitsOf(pid), 0);
  const startNs = process.hrtime.bigint();
  const runQueues: RunQueueTrace | null = TRACE_DIR === undefined ? null : traceRunQueues({ server: pids, load: loads.children.map((c) => c.pid) });
  cluster.child.send({ type: 'drive', rate, seconds: SETTINGS.seconds, users, where });
  const driven = await cluster.child.next<Extract<ScaleReport, { type: 'driven' }>>('driven', (SETTINGS.seconds + 60) * 1000);
  await sleep(1000); // stragglers
  runQueues?.stop(phase, Number(startNs), Number(process.hrtime.bigint()));
  const cpu = serverCpu(pids) - cpuBefore;
  return {
    driven,
    micros: (await gather(loads)).micros,
    cpu,
    primaryCpu: cpuSecondsOf(pids[0]) - primaryBefore,
    waits: pids.reduce((n, pid) => n + waitsOf(pid), 0) - waitsBefore,
    netCpu: cpu - idle * (Number(process.hrtime.bigint() - startNs) / 1e9),
  };
}

type RateWindow = Awaited<ReturnType<typeof rateWindow>>;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * Deliveries at a steady rate. The first rate runs SETTINGS.rounds windows: one window's p99 is
 * a few scheduling accidents on 2 shared cores (bench/PROFILE.md, "The Redis path profiled"), so
 * the row gives the median of the windows' percentiles, with each window's p99 and the p99 of all
 * their samples pooled beside it.
 */
async function steadyRate(cluster: Cluster, loads: LoadGens, pids: number[], idle: number, transport: string, rate: number, where: 'remote' | 'local', users: UserRanges): Promise<RateRow> {
  const rounds = rate === SETTINGS.rates[0] ? SETTINGS.rounds : 1;
  const windows: RateWindow[] = [];
  for (let round = 1; round <= rounds; round++) {
    windows.push(await rateWindow(cluster, loads, pids, idle, `${transport}-${where}-${rate}${rounds > 1 ? `-${round}` : ''}`, rate, where, users));
  }
  const sum = (pick: (w: RateWindow) => number) => windows.reduce((total, w) => total + pick(w), 0);
  const sent = sum((w) => w.driven.sent);
  const ofRounds = (p: number) => median(windows.map((w) => percentile(w.micros, p) / 1000));
  const pooled = windows.flatMap((w) => w.micros).sort((a, b) => a - b);
  const row: RateRow = {
    transport,
    where,
    rate,
    rounds,
    sent,
    received: pooled.length,
    missedTargets: sum((w) => w.driven.missed),
    achieved: sent / (SETTINGS.seconds * rounds),
    p50: ofRounds(50),
    p99: ofRounds(99),
    p999: ofRounds(99.9),
    p99ByRound: windows.map((w) => percentile(w.micros, 99) / 1000),
    p99Pooled: percentile(pooled, 99) / 1000,
    max: (pooled[pooled.length - 1] ?? Number.NaN) / 1000,
    cpuMicrosPerDelivery: (sum((w) => w.cpu) * 1e6) / sent,
    netCpuMicrosPerDelivery: (sum((w) => w.netCpu) * 1e6) / sent,
    primaryCpuMicrosPerDelivery: (sum((w) => w.primaryCpu) * 1e6) / sent,
    wakesPerDelivery: sum((w) => w.waits) / sent,
  };
  const byRound = rounds > 1 ? ` (medians of ${rounds} rounds; p99 by round ${row.p99ByRound.map((v) => v.toFixed(2)).join(', ')}; pooled ${row.p99Pooled.toFixed(2)})` : '';
  log(
    `${transport} ${where} ${rate}/s: sent ${row.sent}, received ${row.received}, p50 ${row.p50} ms, p99 ${row.p99} ms, p999 ${row.p999} ms${byRound}, ` +
      `${row.cpuMicrosPerDelivery.toFixed(1)} µs CPU/delivery (${row.netCpuMicrosPerDelivery.toFixed(1)} µs net of idle, ${row.primaryCpuMicrosPerDelivery.toFixed(1)} µs of it in the primary; ${row.wakesPerDelivery.toFixed(2)} event-loop wake-ups/delivery)`,
  );
  return row;
}

async function fanout(send: (count: number) => Promise<number>, loads: LoadGens, broadcasts: number) {
  for (const child of loads.children) child.send({ type: 'arm', perMember: broadcasts });
  const armed = await Promise.all(loads.children.map((child) => child.next<Extract<ScaleLoadReport, { type: 'armed' }>>('armed', 10_000)));
  const members = armed.reduce((n, a) => n + a.members, 0);
  const startNs = await send(broadcasts);
  const reached = await Promise.all(loads.children.map((child) => child.next<Extract<ScaleLoadReport, { type: 'reached' }>>('reached', 120_000)));
  const seconds = (Math.max(...reached.map((r) => r.atNs)) - startNs) / 1e9;
  return { members, broadcasts, deliveries: members * broadcasts, seconds, rate: (members * broadcasts) / seconds };
}

const clusterBroadcast = (cluster: Cluster) => async (count: number) => {
  cluster.child.send({ type: 'broadcast', count });
  return (await cluster.child.next<Extract<ScaleReport, { type: 'broadcast-done' }>>('broadcast-done', 120_000)).startNs;
};

async function closeLoads(loads: LoadGens): Promise<void> {
  for (const child of loads.children) child.send({ type: 'close' });
  await Promise.all(loads.children.map((child) => child.stop(10_000)));
}

interface TransportRun {
  transport: string;
  workers: number;
  connections: number;
  openSeconds: number;
  openRate: number;
  handshakeCpu: { primaryMicros: number; workersMicros: number };
  perWorker: { pid: number; connections: number; rssMiB: number; rssBytesPerConnection: number; heapBytesPerConnection: number }[];
  primaryRssMiB: number;
  rates: RateRow[];
  fanout: Awaited<ReturnType<typeof fanout>> | null;
  drain: { seconds: number; clientsClosedSeconds: number; closeCodes: Record<string, number> };
}

async function mainRun(transport: 'ipc' | 'redis'): Promise<TransportRun> {
  const { workers } = SETTINGS;
  const connections = transport === 'redis' ? Number(process.env.SCALE_REDIS_CONNECTIONS ?? SETTINGS.connections) : SETTINGS.connections;
  const members = Math.min(SETTINGS.members, connections);
  log(`${transport}: ${workers} workers, ${connections} connections`);
  const cluster = await startCluster(workers, transport);
  try {
    const before = await clusterStats(cluster);
    const pidsBefore = [cluster.primaryPid, ...before.workers.map((w) => w.pid)];
    const cpuBeforeOpen = pidsBefore.map(cpuSecondsOf);
    const loads = await openConnections(cluster.port, '/bench', connections, members, false);
    log(`${transport}: ${loads.connected} connections in ${loads.openSeconds.toFixed(1)} s (${Math.round(loads.openRate)}/s)`);
    const cpuOpen = pidsBefore.map((pid, i) => cpuSecondsOf(pid) - cpuBeforeOpen[i]);
    const handshakeCpu = { primaryMicros: (cpuOpen[0] * 1e6) / loads.connected, workersMicros: (cpuOpen.slice(1).reduce((a, b) => a + b, 0) * 1e6) / loads.connected };
    log(`${transport}: server CPU per connection opened: ${handshakeCpu.workersMicros.toFixed(0)} µs in the workers, ${handshakeCpu.primaryMicros.toFixed(0)} µs in the primary`);
    const after = await clusterStats(cluster);
    const perWorker = after.workers.map((w: WorkerFigures) => {
      const base = before.workers.find((b) => b.pid === w.pid)!;
      return {
        pid: w.pid,
        connections: w.connections,
        rssMiB: w.rss / 2 ** 20,
        rssBytesPerConnection: (w.rss - base.rss) / w.connections,
        heapBytesPerConnection: (w.heapUsed - base.heapUsed) / w.connections,
      };
    });
    const pids = [cluster.primaryPid, ...after.workers.map((w) => w.pid)];
    // Warm-up (JIT, buffers), not measured: both kinds of delivery once.
    for (const where of ['local', 'remote'] as const) {
      cluster.child.send({ type: 'drive', rate: SETTINGS.rates[0], seconds: SETTINGS.warmupSeconds, users: loads.users, where });
      await cluster.child.next('driven', 60_000);
    }
    await sleep(500);
    const idle = await idleCpu(pids);
    const rates: RateRow[] = [];
    rates.push(await steadyRate(cluster, loads, pids, idle, transport, SETTINGS.rates[0], 'local', loads.users));
    for (const rate of SETTINGS.rates) rates.push(await steadyRate(cluster, loads, pids, idle, transport, rate, 'remote', loads.users));
    const fan = ratesOnly ? null : await fanout(clusterBroadcast(cluster), loads, SETTINGS.broadcasts);
    if (fan) log(`${transport}: fan-out to ${fan.members} members across ${workers} workers: ${Math.round(fan.rate)} deliveries/s`);

    // Drain: SIGTERM to the primary; every session is closed with 1001 and every process exits.
    for (const child of loads.children) child.send({ type: 'drain' });
    const drainStart = process.hrtime.bigint();
    cluster.child.process.kill('SIGTERM');
    const drained = Promise.all(loads.children.map((child) => child.next<Extract<ScaleLoadReport, { type: 'drained' }>>('drained', 120_000)));
    await cluster.child.stop(120_000);
    const seconds = Number(process.hrtime.bigint() - drainStart) / 1e9;
    const reports = await drained;
    const clientsClosedSeconds = (Math.max(...reports.map((r) => r.atNs)) - Number(drainStart)) / 1e9;
    const closeCodes: Record<string, number> = {};
    for (const report of reports) for (const [code, n] of Object.entries(report.closeCodes)) closeCodes[code] = (closeCodes[code] ?? 0) + n;
    log(`${transport}: drained in ${seconds.toFixed(1)} s (close codes ${JSON.stringify(closeCodes)})`);
    await closeLoads(loads);
    return {
      transport,
      workers,
      connections: loads.connected,
      openSeconds: loads.openSeconds,
      openRate: loads.openRate,
      handshakeCpu,
      perWorker,
      primaryRssMiB: after.primary.rss / 2 ** 20,
      rates,
      fanout: fan,
      drain: { seconds, clientsClosedSeconds, closeCodes },
    };
  } finally {
    cluster.child.process.kill('SIGKILL');
  }
}

/**
 * The reconnect storm, on a cluster of its own whose workers all have `maxHandshakesPerSecond`
 * (the main run measures the opening rate without it): `stormConnections` clients that
 * reconnect when dropped, then one worker killed.
 */
async function stormRun() {
  const { stormWorkers: workers, stormConnections, stormHandshakesPerSecond } = SETTINGS;
  log(`storm: ${workers} workers with maxHandshakesPerSecond ${stormHandshakesPerSecond}, ${stormConnections} connections`);
  const cluster = await startCluster(workers, 'ipc', stormHandshakesPerSecond, true);
  try {
    const loads = await openConnections(cluster.port, '/bench', stormConnections, 0, true);
    log(`storm: ${loads.connected} connections in ${loads.openSeconds.toFixed(1)} s (${Math.round(loads.openRate)}/s, under the limit of ${workers} x ${stormHandshakesPerSecond}/s)`);
    const storm = { ...(await reconnectStorm(cluster, loads)), openSeconds: loads.openSeconds, openRate: loads.openRate };
    await closeLoads(loads);
    return storm;
  } finally {
    cluster.child.process.kill('SIGKILL');
    await cluster.child.stop(5000);
  }
}

/**
 * The like-for-like baseline of the steady-rate rows: as many workers as the main run, as many
 * idle connections, the same drive (every worker at rate/workers in 5 ms ticks), but each worker
 * on LocalTransport (no cluster, nothing published): each delivers to users of its own. The
 * main run's "remote" rows differ from this one only in that every message crosses a process.
 */
async function localWorkersRun(): Promise<RateRow> {
  const { workers, connections } = SETTINGS;
  log(`local workers: ${workers} workers on LocalTransport, ${connections} connections`);
  const cluster = await startCluster(workers, 'local');
  try {
    const loads = await openConnections(cluster.port, '/bench', connections, 0, false);
    const stats = await clusterStats(cluster, false);
    const pids = [cluster.primaryPid, ...stats.workers.map((w) => w.pid)];
    cluster.child.send({ type: 'drive', rate: SETTINGS.rates[0], seconds: SETTINGS.warmupSeconds, users: loads.users, where: 'local' });
    await cluster.child.next('driven', 60_000);
    await sleep(500);
    const row = await steadyRate(cluster, loads, pids, await idleCpu(pids), `${workers} workers, LocalTransport`, SETTINGS.rates[0], 'local', loads.users);
    await closeLoads(loads);
    return row;
  } finally {
    cluster.child.process.kill('SIGKILL');
    await cluster.child.stop(5000);
  }
}

/**
 * Fan-out throughput with `workers` workers (1: LocalTransport, the single-node baseline; more:
 * IpcTransport), every connection a member; with one worker also the CPU of a local delivery.
 */
async function scalingRun(workers: number) {
  const transport = workers === 1 ? 'local' : 'ipc';
  const cluster = await startCluster(workers, transport);
  try {
    const loads = await openConnections(cluster.port, '/bench', SETTINGS.scalingMembers, SETTINGS.scalingMembers, false);
    const fan = ratesOnly ? null : await fanout(clusterBroadcast(cluster), loads, SETTINGS.broadcasts * 5);
    if (fan) log(`${workers} worker(s), ${transport}: fan-out ${Math.round(fan.rate)} deliveries/s`);
    let local: RateRow | null = null;
    if (workers === 1) {
      const stats = await clusterStats(cluster, false);
      const pids = [cluster.primaryPid, ...stats.workers.map((w) => w.pid)];
      cluster.child.send({ type: 'drive', rate: SETTINGS.rates[0], seconds: SETTINGS.warmupSeconds, users: loads.users, where: 'local' });
      await cluster.child.next('driven', 60_000);
      local = await steadyRate(cluster, loads, pids, await idleCpu(pids), 'single node (LocalTransport)', SETTINGS.rates[0], 'local', loads.users);
    }
    await closeLoads(loads);
    return { workers, transport, ...fan, local };
  } finally {
    cluster.child.process.kill('SIGKILL');
    await cluster.child.stop(5000);
  }
}

async function rawWsRun() {
  const port = await freePort();
  const child = spawnNode('raw ws', join(DIST, 'servers/raw-ws.server.js'), {}, { cpu: -1, nodeFlags: ['--expose-gc'], env: { BENCH_PORT: String(port) } });
  try {
    await child.next<Extract<ServerReport, { type: 'ready' }>>('ready', 30_000);
    child.send({ type: 'memory' });
    const before = await child.next<Extract<ServerReport, { type: 'memory' }>>('memory', 30_000);
    const loads = await openConnections(port, '/bench', SETTINGS.scalingMembers, SETTINGS.scalingMembers, false);
    child.send({ type: 'memory' });
    const after = await child.next<Extract<ServerReport, { type: 'memory' }>>('memory', 30_000);
    const fan = await fanout(
      async (count) => {
        child.send({ type: 'burst', broadcasts: count, text: 'x'.repeat(16), inFlight: 1 });
        return (await child.next<Extract<ServerReport, { type: 'burst-done' }>>('burst-done', 120_000)).startNs;
      },
      loads,
      SETTINGS.broadcasts * 5,
    );
    log(`raw ws (1 process): fan-out ${Math.round(fan.rate)} deliveries/s, ${Math.round((after.rss - before.rss) / after.connections)} B RSS per connection`);
    await closeLoads(loads);
    return { ...fan, openRate: loads.openRate, rssBytesPerConnection: (after.rss - before.rss) / after.connections };
  } finally {
    child.send({ type: 'stop' });
    await child.stop(5000);
  }
}

// ---- run -----------------------------------------------------------------------------------

const started = Date.now();
const loadBefore = loadavg();
const runs: TransportRun[] = [];
if (!stormOnly) for (const transport of TRANSPORTS) runs.push(await mainRun(transport));
const localWorkers = SETTINGS.localWorkers && !stormOnly ? await localWorkersRun() : null;
const storm = (SETTINGS.storm && TRANSPORTS.includes('ipc')) || stormOnly ? await stormRun() : null;
const scaling = [];
if (!stormOnly) for (const workers of SETTINGS.scaling) scaling.push(await scalingRun(workers));
const rawWs = SETTINGS.raw && !stormOnly ? await rawWsRun() : null;
const results = { date: new Date().toISOString(), loadBefore, loadAfter: loadavg(), smoke, settings: { ...SETTINGS, schedulingPolicy: SCHEDULING, presence: PRESENCE }, seconds: (Date.now() - started) / 1000, runs, localWorkers, storm, scaling, rawWs };
const out = process.env.SCALE_OUT ?? join(BENCH_DIR, 'scale-results.json');
writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
if (!smoke && !ratesOnly && !stormOnly) {
  const { renderScaleSection } = await import('./scale-report.js');
  const file = join(BENCH_DIR, 'RESULTS.md');
  const current = readFileSync(file, 'utf8');
  writeFileSync(file, renderScaleSection(current, results));
}
log(`done in ${Math.round((Date.now() - started) / 1000)} s; results in ${out}`);
process.exit(0);
