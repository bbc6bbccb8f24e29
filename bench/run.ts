// `npm run bench`: SPEC 13.1-13.3 against raw ws, the stock Nest gateways and Socket.IO, all
// in one run on this machine. Each server runs in its own process, one under load at a time;
// load generators are separate processes. Writes bench/results.json, bench/RESULTS.md,
// bench/results.svg and bench/results.png.
//
//   BENCH_ONLY=echo,fanout,connect,memory,micro   scenarios to run (default: all)
//   BENCH_CONTENDERS=riverside      contenders besides raw ws (default: all; riverside-redis and
//                                   riverside-nats: idle memory on a cluster transport)
//   Scenarios left out of BENCH_ONLY keep their rows from the previous bench/results.json, and
//   RESULTS.md says so.
//   BENCH_QUICK=1                   short rounds, for trying the harness out
//   BENCH_ROUNDS=3                  rounds of echo and connect, and bursts of fan-out (default 7,
//                                   5 for connect); the idle-memory figure keeps its 5,000
//                                   connections. E.g. BENCH_ONLY=connect,memory,fanout BENCH_ROUNDS=3
//   BENCH_PROFILE=riverside         run that contender's server with --cpu-prof (bench/dist/profiles/);
//                                   a comma list (riverside,raw-ws) profiles several, each file named
//                                   <contender>-<time>.cpuprofile, so that the same run compares them
//   BENCH_PROFILE_INTERVAL=100      sampling interval in µs (Node's default 1000 gives a connect
//                                   round only a few hundred samples)
//   BENCH_FANOUT_MEMBERS=10000      fan-out channel sizes to run (default 1000,10000)
//   BENCH_FANOUT_IN_FLIGHT=1        broadcasts in flight to run (default 1,4), e.g. to profile
//                                   one-at-a-time fan-out alone
//   BENCH_OUT=/tmp/bench            where results.json, RESULTS.md, results.svg and results.png go
//                                   (default bench/); results.json there is also what BENCH_ONLY
//                                   carries rows over from
//   BENCH_SMOKE=1                   every scenario and contender at a tiny scale (one round, a few
//                                   hundred connections, no waiting for a quiet machine): a few
//                                   seconds a scenario, figures meaningless. The suite's smoke
//                                   (test/bench/bench-smoke.e2e-spec.ts) runs it; needs BENCH_OUT, so
//                                   that it never replaces the published results in bench/
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Contender, CONTENDERS, ECHO_CONTENDERS, MEMORY_CONTENDERS } from './contenders.js';
import { Child, freePort, LOAD_CPU, SERVER_CPU, sourceAddress, spawnNode } from './lib/child.js';
import { busyCores, cpuSecondsOf, machineBusySeconds, ownCpuSeconds, sleep } from './lib/process.js';
import { formatBytes, formatRate, median } from './lib/stats.js';
import type { ConnectLoadConfig, ConnectLoadReport } from './load/connect.load.js';
import type { EchoLoadConfig, EchoLoadResult } from './load/echo.load.js';
import type { MembersLoadConfig, MembersReport } from './load/members.load.js';
import type { MicroResult } from './micro.js';
import { type ConnectRow, type EchoRow, type FanoutRow, type MemoryRow, machineFacts, type Results, writeReports } from './report.js';
import type { ServerReport } from './servers/harness.js';

const DIST = fileURLToPath(new URL('.', import.meta.url));
const BENCH_DIR = join(DIST, '..');
const quick = process.env.BENCH_QUICK === '1';
const smoke = process.env.BENCH_SMOKE === '1';
const OUT_DIR = process.env.BENCH_OUT ?? BENCH_DIR;
if (smoke && process.env.BENCH_OUT === undefined) {
  throw new Error('BENCH_SMOKE=1 needs BENCH_OUT=<directory>: a smoke run must not replace the results in bench/');
}
const only = new Set((process.env.BENCH_ONLY ?? 'echo,fanout,connect,memory,micro').split(','));
const profiled = process.env.BENCH_PROFILE?.split(',') ?? [];
const profileInterval = process.env.BENCH_PROFILE_INTERVAL;
const roundsOverride = process.env.BENCH_ROUNDS === undefined ? null : Number(process.env.BENCH_ROUNDS);
if (roundsOverride !== null && !(Number.isInteger(roundsOverride) && roundsOverride > 0)) {
  throw new Error(`BENCH_ROUNDS must be a positive integer, got ${process.env.BENCH_ROUNDS}`);
}
/** Rounds (or bursts) of a scenario: BENCH_ROUNDS if set, else its default. */
function rounds(normal: number, short: number): number {
  return roundsOverride ?? (smoke ? 1 : quick ? short : normal);
}

/** A scenario's size: the normal one, BENCH_QUICK's, or BENCH_SMOKE's. */
function scale<T>(normal: T, short: T, tiny: T): T {
  return smoke ? tiny : quick ? short : normal;
}

/** A comma list of positive integers from the environment, else `fallback`. */
function listSetting(name: string, fallback: number[]): number[] {
  const value = process.env[name];
  if (value === undefined) return fallback;
  const list = value.split(',').map(Number);
  if (!list.every((n) => Number.isInteger(n) && n > 0)) throw new Error(`${name} must be a comma list of positive integers, got ${value}`);
  return list;
}

const SETTINGS = {
  echo: {
    connections: scale(100, 100, 10),
    window: 16,
    payloadBytes: [64, 1024],
    rounds: rounds(7, 2),
    warmupMs: scale(500, 500, 100),
    measureMs: scale(2500, 1000, 200),
  },
  fanout: {
    members: listSetting('BENCH_FANOUT_MEMBERS', scale([1000, 10_000], [1000, 10_000], [200])),
    bursts: rounds(7, 2),
    /** Broadcasts per burst are chosen so that a burst is about this many deliveries. */
    deliveriesPerBurst: scale(100_000, 50_000, 1000),
    /** Several load generators even in a smoke, so that their counts are summed as in a full run. */
    membersPerProcess: scale(2500, 2500, 100),
    messageBytes: 64,
    /** Broadcasts issued in one macrotask: 1, and several at once. */
    inFlight: listSetting('BENCH_FANOUT_IN_FLIGHT', [1, 4]),
  },
  connect: {
    /** Connections opened (and closed) per round, with the user id in the query. */
    connections: scale(12_000, 4000, 200),
    /** Opened first by every fresh server process, not measured: JIT warm-up. */
    warmupConnections: scale(6000, 2000, 100),
    /** Load generator processes, each from a source address of its own. */
    loaders: 2,
    /** Handshakes in flight per load generator. */
    concurrency: 64,
    rounds: rounds(5, 2),
  },
  memory: {
    connections: scale(5000, 1000, 200),
    perProcess: scale(2500, 2500, 100),
    warmConnections: scale(200, 200, 20),
  },
  micro: {
    durationMs: scale(400, 150, 20),
  },
};

// ---- servers -------------------------------------------------------------------------------

interface RunningServer {
  contender: Contender;
  child: Child;
  port: number;
}

async function startServer(contender: Contender): Promise<RunningServer> {
  const port = await freePort();
  const nodeFlags = ['--expose-gc'];
  if (profiled.includes(contender.id)) {
    const dir = join(DIST, 'profiles');
    mkdirSync(dir, { recursive: true });
    nodeFlags.push('--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${contender.id}-${Date.now()}.cpuprofile`);
    if (profileInterval !== undefined) nodeFlags.push(`--cpu-prof-interval=${profileInterval}`);
  }
  const child = spawnNode(contender.label, join(DIST, contender.server), {}, {
    cpu: SERVER_CPU,
    nodeFlags,
    env: { BENCH_PORT: String(port), ...contender.env },
  });
  await child.next<Extract<ServerReport, { type: 'ready' }>>('ready', 30_000);
  return { contender, child, port };
}

async function stopServer(server: RunningServer): Promise<void> {
  server.child.send({ type: 'stop' });
  await server.child.stop(8000);
}

async function serverCounts(server: RunningServer) {
  server.child.send({ type: 'members' });
  return server.child.next<Extract<ServerReport, { type: 'members' }>>('members', 10_000);
}

async function serverMemory(server: RunningServer) {
  server.child.send({ type: 'memory' });
  return server.child.next<Extract<ServerReport, { type: 'memory' }>>('memory', 20_000);
}

/** Polls the server until `check` holds (connections are counted asynchronously). */
async function until(server: RunningServer, what: string, check: (counts: { members: number; connections: number }) => boolean) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const counts = await serverCounts(server);
    if (check(counts)) return counts;
    if (Date.now() > deadline) throw new Error(`${server.contender.label}: ${what} not reached (${JSON.stringify(counts)})`);
    await sleep(100);
  }
}

// ---- other work on the machine --------------------------------------------------------------

const QUIET_CORES = 0.3;
/** A smoke runs alongside the rest of the suite: it records how busy the machine was, never waits. */
const MAX_TOTAL_WAIT_MS = smoke ? 0 : 90_000;
const QUIET_SAMPLE_MS = smoke ? 50 : 500;
/** How long a step that moves connections or messages may take before the run gives up on it. */
const STEP_TIMEOUT_MS = smoke ? 30_000 : 120_000;
let waitedMs = 0;
/** What other processes kept busy just before each measurement, in cores. */
const backgroundLoad: number[] = [];

/**
 * Called between measurements, when nothing of ours is running: waits (bounded, per round and
 * per run) while other processes keep the machine busy, and records how busy it was.
 */
async function waitForQuiet(): Promise<void> {
  const started = Date.now();
  let busy = await busyCores(QUIET_SAMPLE_MS, availableParallelism());
  while (busy > QUIET_CORES && Date.now() - started < 20_000 && waitedMs + (Date.now() - started) < MAX_TOTAL_WAIT_MS) {
    busy = await busyCores(1000, availableParallelism());
  }
  waitedMs += Date.now() - started;
  backgroundLoad.push(busy);
}

// ---- 13.1 echo -----------------------------------------------------------------------------

/** A JSON object of exactly `bytes` bytes, shaped like an application message. */
function jsonPayload(bytes: number): string {
  const base = { type: 'chat', room: 'lobby', seq: 12345, text: '' };
  const emptyLength = JSON.stringify(base).length;
  if (bytes < emptyLength) throw new Error(`payload below ${emptyLength} bytes`);
  return JSON.stringify({ ...base, text: 'x'.repeat(bytes - emptyLength) });
}

async function runEcho(server: RunningServer, payload: string): Promise<EchoLoadResult> {
  const { echo } = SETTINGS;
  const config: EchoLoadConfig = {
    protocol: server.contender.protocol,
    host: '127.0.0.1',
    port: server.port,
    path: server.contender.path,
    serverPid: server.child.pid,
    connections: echo.connections,
    window: echo.window,
    payload,
    warmupMs: echo.warmupMs,
    measureMs: echo.measureMs,
    localAddress: sourceAddress(),
  };
  const load = spawnNode(`echo load (${server.contender.label})`, join(DIST, 'load/echo.load.js'), config, { cpu: LOAD_CPU });
  try {
    return await load.next<EchoLoadResult>('result', echo.warmupMs + echo.measureMs + 30_000);
  } finally {
    await load.stop();
  }
}

async function echoScenario(): Promise<EchoRow[]> {
  const { echo } = SETTINGS;
  const servers: RunningServer[] = [];
  const rows: EchoRow[] = [];
  try {
    for (const contender of ECHO_CONTENDERS) servers.push(await startServer(contender));
    for (const bytes of echo.payloadBytes) {
      const payload = jsonPayload(bytes);
      const samples = new Map<Contender['id'], EchoLoadResult[]>(ECHO_CONTENDERS.map((c) => [c.id, []]));
      for (let round = 0; round < echo.rounds; round++) {
        // Contenders take turns within a round, in a rotating order, so that noise on the
        // machine (other processes, thermal) is spread over all of them.
        for (let turn = 0; turn < servers.length; turn++) {
          const server = servers[(round + turn) % servers.length];
          await waitForQuiet();
          const result = await runEcho(server, payload);
          samples.get(server.contender.id)?.push(result);
          log(
            `echo ${bytes} B round ${round + 1}/${echo.rounds} ${server.contender.label.padEnd(27)} ` +
              `${formatRate(result.messages / result.seconds).padStart(7)} msgs/s, server CPU ${(
                (100 * result.serverCpuSeconds) / result.seconds
              ).toFixed(0)}%`,
          );
        }
      }
      for (const contender of ECHO_CONTENDERS) {
        const runs = samples.get(contender.id) ?? [];
        rows.push({
          contender: contender.id,
          payloadBytes: bytes,
          rates: runs.map((run) => run.messages / run.seconds),
          usPerMsgRounds: runs.map((run) => (1e6 * run.serverCpuSeconds) / run.messages),
          msgsPerSec: median(runs.map((run) => run.messages / run.seconds)),
          serverCpu: median(runs.map((run) => run.serverCpuSeconds / run.seconds)),
          serverUsPerMsg: median(runs.map((run) => (1e6 * run.serverCpuSeconds) / run.messages)),
          clientCpu: median(runs.map((run) => run.clientCpuSeconds / run.seconds)),
          closed: runs.reduce((sum, run) => sum + run.closed, 0),
        });
      }
    }
  } finally {
    for (const server of servers) await stopServer(server);
  }
  return rows;
}

// ---- load generators holding many connections (13.2, 13.3) ----------------------------------

async function openConnections(server: RunningServer, total: number, role: 'member' | 'idle', perProcess: number) {
  const loaders: Child[] = [];
  const processes = Math.ceil(total / perProcess);
  for (let k = 0; k < processes; k++) {
    const count = Math.floor(total / processes) + (k < total % processes ? 1 : 0);
    const config: MembersLoadConfig = {
      protocol: server.contender.protocol,
      host: '127.0.0.1',
      port: server.port,
      path: server.contender.path,
      count,
      role,
      userPrefix: `${role}${k}`,
      localAddress: sourceAddress(),
      maxLifetimeMs: 5 * 60_000,
    };
    loaders.push(spawnNode(`${role} load ${k} (${server.contender.label})`, join(DIST, 'load/members.load.js'), config, { cpu: LOAD_CPU }));
  }
  try {
    const ready = await Promise.all(loaders.map((loader) => loader.next<Extract<MembersReport, { type: 'ready' }>>('ready', STEP_TIMEOUT_MS)));
    const connected = ready.reduce((sum, report) => sum + report.connected, 0);
    if (connected !== total) throw new Error(`${server.contender.label}: ${connected} of ${total} connections open`);
    lastConnectNs = Math.max(...ready.map((report) => report.connectNs));
  } catch (error) {
    await closeConnections(loaders);
    throw error;
  }
  return loaders;
}

/** How long the last openConnections() took its slowest load generator to open its connections. */
let lastConnectNs = 0;

async function closeConnections(loaders: Child[]): Promise<void> {
  for (const loader of loaders) loader.send({ type: 'close' });
  await Promise.all(loaders.map((loader) => loader.stop()));
}

// ---- 13.2 fan-out --------------------------------------------------------------------------

async function fanoutScenario(): Promise<FanoutRow[]> {
  const { fanout } = SETTINGS;
  const rows: FanoutRow[] = [];
  const text = 'x'.repeat(fanout.messageBytes - JSON.stringify({ type: 'msg', seq: 10, text: '' }).length);
  for (const members of fanout.members) {
    for (const contender of CONTENDERS.filter((c) => c.fanout)) {
      const server = await startServer(contender);
      let loaders: Child[] = [];
      try {
        loaders = await openConnections(server, members, 'member', fanout.membersPerProcess);
        await until(server, `${members} members`, (counts) => counts.members === members);
        const broadcasts = Math.max(5, Math.round(fanout.deliveriesPerBurst / members));
        for (const inFlight of fanout.inFlight) {
        const e2e: number[] = [];
        const issue: number[] = [];
        const cpuPerDelivery: number[] = [];
        let owed = 0;
        let received = 0;
        // Burst 0 warms the server up and is not counted.
        for (let burst = 0; burst <= fanout.bursts; burst++) {
          if (burst > 0) await waitForQuiet();
          for (const loader of loaders) loader.send({ type: 'arm', perSocket: broadcasts });
          await Promise.all(loaders.map((loader) => loader.next('armed', 10_000)));
          const cpuBefore = cpuSecondsOf(server.child.pid);
          server.child.send({ type: 'burst', broadcasts, text, inFlight });
          const [done, ...reached] = await Promise.all([
            server.child.next<Extract<ServerReport, { type: 'burst-done' }>>('burst-done', STEP_TIMEOUT_MS),
            ...loaders.map((loader) => loader.next<Extract<MembersReport, { type: 'reached' }>>('reached', STEP_TIMEOUT_MS)),
          ]);
          const cpuSeconds = cpuSecondsOf(server.child.pid) - cpuBefore;
          const lastArrival = Math.max(...reached.map((report) => report.atNs));
          const deliveries = broadcasts * members;
          owed += deliveries;
          received += reached.reduce((sum, report) => sum + report.received, 0);
          if (burst > 0) {
            e2e.push(deliveries / ((lastArrival - done.startNs) / 1e9));
            issue.push(deliveries / ((done.endNs - done.startNs) / 1e9));
            cpuPerDelivery.push((1e6 * cpuSeconds) / deliveries);
          }
          log(
            `fan-out ${members} members x${inFlight} in flight burst ${burst === 0 ? 'warm-up' : `${burst}/${fanout.bursts}`} ${contender.label.padEnd(27)} ` +
              `${formatRate(deliveries / ((lastArrival - done.startNs) / 1e9)).padStart(7)} deliveries/s`,
          );
          await sleep(200);
        }
        rows.push({
          contender: contender.id,
          members,
          inFlight,
          broadcasts,
          rates: e2e,
          deliveriesPerSec: median(e2e),
          serverDeliveriesPerSec: median(issue),
          serverUsPerDelivery: median(cpuPerDelivery),
          usPerDeliveryBursts: cpuPerDelivery,
          deliveries: owed,
          received,
        });
        }
      } finally {
        await closeConnections(loaders);
        await stopServer(server);
      }
    }
  }
  return rows;
}

// ---- connect rate ---------------------------------------------------------------------------

/**
 * Handshakes with a query-string auth, as connection churn: in each round `loaders` load
 * generators open `connections` connections between them, `concurrency` at a time each, and
 * close each one as soon as its 101 arrives; the contenders alternate within a round, each on a
 * fresh server process warmed up with `warmupConnections` first. Server
 * CPU per connection covers the upgrade, the auth, the registration and the close: it is read
 * (in ns, all threads) from just before the load starts until the server has counted every
 * connection closed and settled, so nothing of the round before or after lands in it. The
 * rate is the load generators' (first connect to last 101); the log shows how busy the server
 * and the load generators were, to check that the server is the bottleneck.
 */
async function connectScenario(): Promise<ConnectRow[]> {
  const { connect } = SETTINGS;
  const contenders = ECHO_CONTENDERS.filter((c) => c.id === 'raw-ws' || c.id === 'riverside');
  const samples = new Map<Contender['id'], { rate: number; usPerConnection: number }[]>(contenders.map((c) => [c.id, []]));
  for (let round = 1; round <= connect.rounds; round++) {
    for (let turn = 0; turn < contenders.length; turn++) {
      const contender = contenders[(round + turn) % contenders.length];
      // A server process of its own in every round: one process's layout and JIT decisions shift
      // its CPU per connection by several percent for its whole life (runs of one process per
      // contender agreed within each run, not from run to run), so the rounds sample processes.
      const server = await startServer(contender);
      try {
        await connectRound(server, connect.warmupConnections);
        let measured = await connectRound(server, connect.connections);
        // Work of other processes during the round lands on the server's core and cache and
        // shows up as CPU per connection: such a round is run again (a few times at most).
        for (let retry = 0; measured.otherCores > QUIET_CORES && retry < CONNECT_RETRIES; retry++) {
          log(`connect round ${round} ${contender.label}: other processes kept ${measured.otherCores.toFixed(2)} cores busy; again`);
          measured = await connectRound(server, connect.connections);
        }
        const { startNs, endNs, cpuSeconds, loadCpuSeconds, otherCores } = measured;
        const seconds = (endNs - startNs) / 1e9;
        const sample = { rate: connect.connections / seconds, usPerConnection: (1e6 * cpuSeconds) / connect.connections };
        samples.get(contender.id)?.push(sample);
        log(
          `connect round ${round}/${connect.rounds} ${contender.label.padEnd(27)} ${formatRate(sample.rate).padStart(7)} conn/s, ` +
            `server CPU ${sample.usPerConnection.toFixed(1)} µs/conn (server busy ${((100 * cpuSeconds) / seconds).toFixed(0)}%, ` +
            `load generators ${((100 * loadCpuSeconds) / seconds).toFixed(0)}% of a core, other processes ${otherCores.toFixed(2)} cores)`,
        );
      } finally {
        await stopServer(server);
      }
    }
  }
  return contenders.map((contender) => {
    const runs = samples.get(contender.id) ?? [];
    return {
      contender: contender.id,
      connections: connect.connections,
      rates: runs.map((run) => run.rate),
      connectionsPerSec: median(runs.map((run) => run.rate)),
      usPerConnectionRounds: runs.map((run) => run.usPerConnection),
      serverUsPerConnection: median(runs.map((run) => run.usPerConnection)),
    };
  });
}

/** One round of connection churn against `server`: its CPU, and the load's time span and CPU. */
async function connectRound(server: RunningServer, connections: number) {
  const { connect } = SETTINGS;
  const loaders: Child[] = [];
  try {
    for (let k = 0; k < connect.loaders; k++) {
      const config: ConnectLoadConfig = {
        host: '127.0.0.1',
        port: server.port,
        path: server.contender.path,
        count: Math.floor(connections / connect.loaders) + (k < connections % connect.loaders ? 1 : 0),
        concurrency: connect.concurrency,
        userPrefix: `churn${k}`,
        localAddress: sourceAddress(),
        maxLifetimeMs: 2 * 60_000,
      };
      loaders.push(spawnNode(`connect load ${k} (${server.contender.label})`, join(DIST, 'load/connect.load.js'), config, { cpu: LOAD_CPU }));
    }
    await Promise.all(loaders.map((loader) => loader.next('ready', 30_000)));
    await waitForQuiet();
    const machineBefore = machineBusySeconds();
    const startedNs = Number(process.hrtime.bigint());
    const ownBefore = ownCpuSeconds();
    const cpuBefore = cpuSecondsOf(server.child.pid);
    for (const loader of loaders) loader.send({ type: 'go' });
    const done = await Promise.all(loaders.map((loader) => loader.next<Extract<ConnectLoadReport, { type: 'done' }>>('done', STEP_TIMEOUT_MS)));
    const opened = done.reduce((sum, report) => sum + report.opened, 0);
    if (opened !== connections) throw new Error(`${server.contender.label}: ${opened} of ${connections} connections opened`);
    await until(server, 'no connections', (counts) => counts.connections === 0);
    // Whatever the server still does for the last closes after its count reached 0.
    await sleep(CONNECT_SETTLE_MS);
    const cpuSeconds = cpuSecondsOf(server.child.pid) - cpuBefore;
    const loadCpuSeconds = done.reduce((sum, report) => sum + report.cpuSeconds, 0);
    const windowSeconds = (Number(process.hrtime.bigint()) - startedNs) / 1e9;
    // What the machine did besides the server, the load generators and this orchestrator.
    const other = machineBusySeconds() - machineBefore - cpuSeconds - loadCpuSeconds - (ownCpuSeconds() - ownBefore);
    return {
      startNs: Math.min(...done.map((report) => report.startNs)),
      endNs: Math.max(...done.map((report) => report.endNs)),
      cpuSeconds,
      loadCpuSeconds,
      otherCores: Math.max(0, other) / windowSeconds,
    };
  } finally {
    // After the measurement: a generator's exit must not land in the round's CPU figures.
    for (const loader of loaders) loader.send({ type: 'close' });
    await Promise.all(loaders.map((loader) => loader.stop()));
  }
}

/** Pause after a connect round before the server's CPU is read (an idle server uses next to none). */
const CONNECT_SETTLE_MS = 100;
/** Times a connect round disturbed by other processes is run again before it is kept anyway (a smoke never waits). */
const CONNECT_RETRIES = smoke ? 0 : 3;

// ---- 13.3 idle memory ----------------------------------------------------------------------

/** The idle-heap figure is computed from at least this many connections (issue 12). */
const MIN_MEMORY_CONNECTIONS = 5000;

async function memoryScenario(): Promise<MemoryRow[]> {
  const { memory } = SETTINGS;
  const rows: MemoryRow[] = [];
  for (const contender of MEMORY_CONTENDERS) {
    const server = await startServer(contender);
    try {
      // A first batch opened and closed, so that lazily created code and buffers are in the
      // baseline rather than charged to the connections.
      await closeConnections(await openConnections(server, memory.warmConnections, 'idle', memory.perProcess));
      await until(server, 'no connections', (counts) => counts.connections === 0);
      const before = await serverMemory(server);
      const loaders = await openConnections(server, memory.connections, 'idle', memory.perProcess);
      try {
        await until(server, `${memory.connections} connections`, (counts) => counts.connections === memory.connections);
        await sleep(1000);
        const after = await serverMemory(server);
        const n = memory.connections;
        // The figure is only meaningful over many connections, all of them still open after GC.
        if (after.connections !== n) throw new Error(`${contender.label}: ${after.connections} of ${n} connections open after GC`);
        if (!quick && !smoke && n < MIN_MEMORY_CONNECTIONS) throw new Error(`idle memory measured over ${n} connections, fewer than ${MIN_MEMORY_CONNECTIONS}`);
        rows.push({
          contender: contender.id,
          connections: n,
          heapPerConnection: (after.heapUsed - before.heapUsed) / n,
          externalPerConnection: (after.external - before.external) / n,
          rssPerConnection: (after.rss - before.rss) / n,
        });
        log(
          `idle memory ${contender.label.padEnd(27)} heap ${formatBytes((after.heapUsed - before.heapUsed) / n)}/conn, ` +
            `RSS ${formatBytes((after.rss - before.rss) / n)}/conn`,
        );
      } finally {
        await closeConnections(loaders);
      }
    } finally {
      await stopServer(server);
    }
  }
  return rows;
}

// ---- micro-benchmarks (user space only) -----------------------------------------------------

async function microScenario(): Promise<MicroResult[]> {
  await waitForQuiet();
  const micro = spawnNode('micro-benchmarks', join(DIST, 'micro.js'), { durationMs: SETTINGS.micro.durationMs }, { cpu: SERVER_CPU });
  try {
    return (await micro.next<{ type: 'micro'; results: MicroResult[] }>('micro', 120_000)).results;
  } finally {
    await micro.stop();
  }
}

// ---- main ----------------------------------------------------------------------------------

function log(line: string): void {
  console.log(`[bench] ${line}`);
}

const startedAt = Date.now();
// Bounded whatever happens; the children exit by themselves when this process goes away.
setTimeout(() => {
  console.error('[bench] the run exceeded 25 minutes; giving up');
  process.exit(2);
}, 25 * 60_000).unref();
if (!existsSync(join(DIST, '..', '..', 'dist', 'index.js'))) {
  throw new Error('dist/ is missing: `npm run bench` builds it first (npm run build)');
}
const results: Results = {
  machine: machineFacts(),
  settings: SETTINGS,
  quick,
  smoke,
  echo: [],
  fanout: [],
  connect: [],
  memory: [],
  micro: [],
  errors: [],
  durationSeconds: 0,
  background: { medianCores: 0, maxCores: 0, waitedSeconds: 0 },
};
const scenarios: [string, () => Promise<void>][] = [
  ['echo', async () => void (results.echo = await echoScenario())],
  ['fanout', async () => void (results.fanout = await fanoutScenario())],
  ['connect', async () => void (results.connect = await connectScenario())],
  ['memory', async () => void (results.memory = await memoryScenario())],
  ['micro', async () => void (results.micro = await microScenario())],
];
for (const [name, run] of scenarios) {
  if (!only.has(name)) continue;
  log(`--- ${name}`);
  try {
    await run();
  } catch (error) {
    const message = `${name}: ${(error as Error).stack ?? error}`;
    results.errors.push(message);
    console.error(`[bench] FAILED ${message}`);
  }
}
carryOver(results);
results.durationSeconds = Math.round((Date.now() - startedAt) / 1000);
results.background = {
  medianCores: median(backgroundLoad),
  maxCores: Math.max(0, ...backgroundLoad),
  waitedSeconds: Math.round(waitedMs / 1000),
};
/** Scenarios not run this time keep the rows of the previous run in OUT_DIR (RESULTS.md says which and when). */
function carryOver(current: Results): void {
  const previousPath = join(OUT_DIR, 'results.json');
  const skipped = (['echo', 'fanout', 'connect', 'memory', 'micro'] as const).filter((name) => !only.has(name));
  if (skipped.length === 0 || !existsSync(previousPath)) return;
  const previous = JSON.parse(readFileSync(previousPath, 'utf8')) as Results;
  for (const name of skipped) (current as unknown as Record<string, unknown>)[name] = previous[name] ?? [];
  current.carriedOver = { scenarios: [...skipped], from: previous.carriedOver?.from ?? previous.machine.date };
}

mkdirSync(OUT_DIR, { recursive: true });
const written = writeReports(OUT_DIR, results, BENCH_DIR);
log(`done in ${results.durationSeconds} s; wrote ${written.join(', ')}`);
process.exit(results.errors.length > 0 ? 1 : 0);
