// Turns a run into bench/results.json (raw numbers), bench/RESULTS.md (tables, method,
// verdicts against SPEC 13) and bench/results.svg, converted to bench/results.png with
// ImageMagick's `convert` when it is installed.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem, type } from 'node:os';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { ALL_CONTENDERS, type Contender, CONTENDERS } from './contenders.js';
import { pinningNote } from './lib/child.js';
import type { MicroResult } from './micro.js';
import { formatBytes, formatRate, formatRatio, median, percent } from './lib/stats.js';

export interface EchoRow {
  contender: Contender['id'];
  payloadBytes: number;
  rates: number[];
  msgsPerSec: number;
  /** Fraction of one core the server used while measured. */
  serverCpu: number;
  serverUsPerMsg: number;
  /** Server CPU µs per message of every round, in round order (paired across contenders). */
  usPerMsgRounds: number[];
  clientCpu: number;
  closed: number;
}

export interface FanoutRow {
  contender: Contender['id'];
  members: number;
  /** Broadcasts issued in one macrotask. */
  inFlight: number;
  broadcasts: number;
  rates: number[];
  /** Messages received by all members per second, from the first send to the last arrival. */
  deliveriesPerSec: number;
  /** Messages written per second of the server's own broadcast loop. */
  serverDeliveriesPerSec: number;
  serverUsPerDelivery: number;
  /** Server CPU µs per delivery of every measured burst, in burst order. */
  usPerDeliveryBursts: number[];
  /** Messages owed to the members over all bursts (the warm-up included), and how many they got. */
  deliveries: number;
  received: number;
}

export interface ConnectRow {
  contender: Contender['id'];
  connections: number;
  rates: number[];
  connectionsPerSec: number;
  /** Server CPU µs per connection of every round, in round order (paired across contenders). */
  usPerConnectionRounds: number[];
  serverUsPerConnection: number;
}

export interface MemoryRow {
  contender: Contender['id'];
  connections: number;
  heapPerConnection: number;
  externalPerConnection: number;
  rssPerConnection: number;
}

export interface Results {
  machine: ReturnType<typeof machineFacts>;
  settings: {
    echo: { connections: number; window: number; payloadBytes: number[]; rounds: number; warmupMs: number; measureMs: number };
    fanout: { members: number[]; bursts: number; deliveriesPerBurst: number; membersPerProcess: number; messageBytes: number; inFlight: number[] };
    connect: { connections: number; warmupConnections: number; loaders: number; concurrency: number; rounds: number };
    memory: { connections: number; perProcess: number; warmConnections: number };
  };
  quick: boolean;
  /** BENCH_SMOKE=1: every scenario at a tiny scale, to check the harness (absent in older results). */
  smoke?: boolean;
  echo: EchoRow[];
  fanout: FanoutRow[];
  connect: ConnectRow[];
  memory: MemoryRow[];
  micro: MicroResult[];
  errors: string[];
  durationSeconds: number;
  /** CPU other processes used just before each measurement, in cores. */
  background: { medianCores: number; maxCores: number; waitedSeconds: number };
  /** Scenarios not run this time, with the rows of the run of `from` (an ISO date). */
  carriedOver?: { scenarios: string[]; from: string };
}

const ROOT = new URL('../../', import.meta.url);
function versionOf(name: string): string {
  try {
    // Read from node_modules: some packages' exports maps hide their package.json.
    return (JSON.parse(readFileSync(new URL(`node_modules/${name}/package.json`, ROOT), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

function gitRevision(): string {
  try {
    return execFileSync('git', ['describe', '--always', '--dirty'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

export function machineFacts() {
  const packageJson = JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as { version: string };
  return {
    date: new Date().toISOString(),
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${type()} ${release()}`,
    node: process.version,
    loadBefore: loadavg().map((value) => value.toFixed(2)).join(' '),
    loadAfter: '',
    pinning: pinningNote(),
    revision: gitRevision(),
    versions: {
      'nestjs-riverside': packageJson.version,
      ws: versionOf('ws'),
      '@nestjs/core': versionOf('@nestjs/core'),
      '@nestjs/platform-ws': versionOf('@nestjs/platform-ws'),
      '@nestjs/platform-socket.io': versionOf('@nestjs/platform-socket.io'),
      'socket.io': versionOf('socket.io'),
    },
  };
}

const labelOf = (id: string) => ALL_CONTENDERS.find((c) => c.id === id)?.label ?? id;
const shortLabel: Record<string, string> = {
  'raw-ws': 'raw ws',
  'raw-ws-framed': 'ws framed',
  riverside: 'Riverside',
  'riverside-redis': 'Riverside+Redis',
  'riverside-nats': 'Riverside+NATS',
  'nest-ws': 'Nest ws',
  'socket.io': 'Socket.IO',
};

function ratio(value: number, base: number | undefined): number {
  return base === undefined || base === 0 ? Number.NaN : value / base;
}

// ---- markdown ------------------------------------------------------------------------------

function verdicts(results: Results): string[][] {
  const rows: string[][] = [];
  for (const bytes of results.settings.echo.payloadBytes) {
    const at = (id: string) => results.echo.find((row) => row.contender === id && row.payloadBytes === bytes);
    const raw = at('raw-ws');
    const riverside = at('riverside');
    if (!raw || !riverside) continue;
    const r = riverside.msgsPerSec / raw.msgsPerSec;
    const cpu = riverside.serverUsPerMsg / raw.serverUsPerMsg;
    rows.push([
      `13.1 echo ${bytes} B: within 10% of raw ws`,
      `${formatRatio(r)} of raw ws's msgs/s (${r >= 1 ? `${((r - 1) * 100).toFixed(1)}% ahead` : `${((1 - r) * 100).toFixed(1)}% behind`}); ` +
        `server CPU per message ${formatRatio(cpu)} raw ws's`,
      r >= 0.9 ? 'met' : 'missed',
    ]);
    for (const other of ['nest-ws', 'socket.io']) {
      const row = at(other);
      if (!row) continue;
      rows.push([
        `13.1 echo ${bytes} B: ahead of ${labelOf(other)}`,
        `${formatRatio(riverside.msgsPerSec / row.msgsPerSec)} its rate`,
        riverside.msgsPerSec > row.msgsPerSec ? 'met' : 'missed',
      ]);
    }
  }
  for (const members of results.settings.fanout.members) {
    const raw = results.fanout.find((row) => row.contender === 'raw-ws' && row.members === members && row.inFlight === 1);
    const riverside = results.fanout.find((row) => row.contender === 'riverside' && row.members === members && row.inFlight === 1);
    if (!raw || !riverside) continue;
    const r = riverside.deliveriesPerSec / raw.deliveriesPerSec;
    const cpu = riverside.serverUsPerDelivery / raw.serverUsPerDelivery;
    rows.push([
      `13.2 fan-out to ${members.toLocaleString('en-US')}: at least raw ws`,
      `${formatRatio(r)} raw ws's deliveries/s; server CPU per delivery ${formatRatio(cpu)} raw ws's`,
      r >= 1 ? 'met' : 'missed',
    ]);
  }
  const raw = results.memory.find((row) => row.contender === 'raw-ws');
  const riverside = results.memory.find((row) => row.contender === 'riverside');
  if (raw && riverside) {
    const heap = riverside.heapPerConnection / raw.heapPerConnection;
    const rss = riverside.rssPerConnection / raw.rssPerConnection;
    rows.push(['13.3 idle memory: within 1.5x of raw ws (JS heap)', `${formatRatio(heap)}`, heap <= 1.5 ? 'met' : 'missed']);
    rows.push(['13.3 idle memory: within 1.5x of raw ws (RSS)', `${formatRatio(rss)}`, rss <= 1.5 ? 'met' : 'missed']);
  }
  for (const [id, name] of [['riverside-redis', 'RedisTransport'], ['riverside-nats', 'NatsTransport']] as const) {
    const clustered = results.memory.find((row) => row.contender === id);
    if (!raw || !clustered) continue;
    const heap = clustered.heapPerConnection / raw.heapPerConnection;
    rows.push([`13.3 idle memory on ${name}: within 1.5x of raw ws (JS heap)`, `${formatRatio(heap)}`, heap <= 1.5 ? 'met' : 'missed']);
  }
  return rows;
}

/** Per-round ratios a[i] / b[i] of two contenders measured in the same rounds. */
function pairedRatios(a: readonly number[], b: readonly number[]): number[] {
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) ratios.push(a[i] / b[i]);
  return ratios;
}

/** The issue-12 goals, each as the median of paired per-round ratios, with their spread. */
function goals(results: Results): string[][] {
  const rows: string[][] = [];
  const goal = (name: string, ratios: number[], target: number, atMost: boolean) => {
    if (ratios.length === 0) return;
    const value = median(ratios);
    rows.push([
      name,
      `**${formatRatio(value)}**`,
      spread(ratios),
      ratios.map((r) => r.toFixed(2)).join(', '),
      `${atMost ? '≤' : '≥'} ${target.toFixed(2)}x`,
      (atMost ? value <= target : value >= target) ? 'met' : 'missed',
    ]);
  };
  for (const [bytes, target] of [[64, 0.85], [1024, 0.9]] as const) {
    const at = (id: string) => results.echo.find((row) => row.contender === id && row.payloadBytes === bytes);
    const raw = at('raw-ws');
    const riverside = at('riverside');
    if (raw && riverside) {
      goal(`echo ${bytes === 1024 ? '1 KiB' : `${bytes} B`}: server CPU µs/msg vs raw ws`, pairedRatios(riverside.usPerMsgRounds, raw.usPerMsgRounds), target, true);
    }
  }
  for (const row of results.fanout.filter((r) => r.contender === 'riverside')) {
    const framed = results.fanout.find((r) => r.contender === 'raw-ws-framed' && r.members === row.members && r.inFlight === row.inFlight);
    if (!framed) continue;
    goal(
      `fan-out to ${row.members.toLocaleString('en-US')}, ${row.inFlight} broadcast${row.inFlight > 1 ? 's' : ''} in flight: server CPU µs/delivery vs pre-framed raw ws`,
      pairedRatios(row.usPerDeliveryBursts, framed.usPerDeliveryBursts),
      row.inFlight > 1 ? 0.8 : 1.0,
      true,
    );
  }
  const rawConnect = results.connect.find((row) => row.contender === 'raw-ws');
  const riversideConnect = results.connect.find((row) => row.contender === 'riverside');
  if (rawConnect && riversideConnect) {
    goal('connections opened per second with a query-string auth vs raw ws', pairedRatios(riversideConnect.rates, rawConnect.rates), 1, false);
    goal('server CPU µs per connection opened vs raw ws', pairedRatios(riversideConnect.usPerConnectionRounds, rawConnect.usPerConnectionRounds), 1, true);
  }
  const rawMemory = results.memory.find((row) => row.contender === 'raw-ws');
  const riversideMemory = results.memory.find((row) => row.contender === 'riverside');
  if (rawMemory && riversideMemory) {
    goal(
      `idle JS heap per authenticated connection vs raw ws (${riversideMemory.connections.toLocaleString('en-US')} connections, one measurement)`,
      [riversideMemory.heapPerConnection / rawMemory.heapPerConnection],
      1.15,
      true,
    );
  }
  return rows;
}

/** Half the range of the samples, relative to their median: '±12%'. */
function spread(samples: readonly number[]): string {
  if (samples.length < 2) return 'n/a';
  const mid = median(samples);
  return `±${((50 * (Math.max(...samples) - Math.min(...samples))) / mid).toFixed(0)}%`;
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function markdown(results: Results): string {
  const { machine, settings } = results;
  const out: string[] = [];
  out.push('# Benchmark results', '');
  out.push(
    `Written by \`npm run bench\` (bench/run.ts) on ${machine.date.slice(0, 10)}; rerun it rather than editing this file. ` +
      `Every contender was measured in this one run on this one machine, so the ratios are the result; the absolute ` +
      `numbers only describe this machine.`,
    '',
  );
  if (results.carriedOver) {
    out.push(
      `This run measured only ${(['echo', 'fanout', 'memory', 'micro'] as const).filter((name) => !results.carriedOver!.scenarios.includes(name)).join(', ')}; ` +
        `the ${results.carriedOver.scenarios.join(', ')} rows are carried over from the run of ${results.carriedOver.from.slice(0, 10)} ` +
        '(each table still compares contenders measured in one run).',
      '',
    );
  }
  if (results.quick) out.push('**Quick run (BENCH_QUICK=1): short rounds, not for publishing.**', '');
  if (results.smoke) out.push('**Smoke run (BENCH_SMOKE=1): a tiny scale that checks the harness; the figures mean nothing.**', '');
  if (results.errors.length > 0) out.push('**Errors:**', '', ...results.errors.map((e) => `    ${e.split('\n')[0]}`), '');

  out.push('## Machine', '');
  out.push(
    `- CPU: ${machine.cpu}, ${machine.cores} cores available; ${machine.memoryGiB} GiB RAM; ${machine.os}`,
    `- Node ${machine.node}; ${Object.entries(machine.versions)
      .map(([name, version]) => `${name} ${version}`)
      .join(', ')}; revision ${machine.revision}`,
    `- ${machine.pinning}; load average (1/5/15 min) ${machine.loadBefore} before, ${machine.loadAfter} after; run took ${results.durationSeconds} s`,
    Number.isFinite(results.background.medianCores)
      ? `- Other processes on the machine just before each measurement: median ${results.background.medianCores.toFixed(2)} cores, ` +
          `max ${results.background.maxCores.toFixed(2)} (the harness waited ${results.background.waitedSeconds} s in all for quiet, ` +
          'at most 20 s per measurement). Work that starts during a measurement shows as server CPU below 100%; the CPU per ' +
          'message columns do not depend on it.'
      : '- Other processes on the machine: not sampled (idle memory does not depend on CPU); see the load average.',
    '',
  );

  const { echo, fanout, memory } = settings;
  out.push('## Method', '');
  out.push(
    '- Each server is its own Node process (`--expose-gc`, nothing else), load generators are separate processes, all on loopback. ' +
      'One server is under load at a time.',
    '- The load generators speak WebSocket themselves: requests are frames built once (masked with an all-zero key, which ' +
      'RFC 6455 allows) and written in batches, and responses are counted from their headers. The client side therefore costs ' +
      'far less per message than any server, so the server is the bottleneck; its CPU use is reported to show it.',
    '- Contenders: **raw ws** = `ws` WebSocketServer, user id from the query at the upgrade, `JSON.parse` + `JSON.stringify` + ' +
      '`send` per echo, fan-out = stringify once then `client.send(text)` per member (readyState checked). **Riverside** = the ' +
      'built package (dist/), `@OnAuthenticate` reading the query, `@OnMessage` returning the message, members `session.join()`ed ' +
      'in `@OnInit`, fan-out = `DeliveryService.deliver({ channel }, msg)`; flood limit lifted (`capacity: Infinity`), default ' +
      'codec and everything else default. **Nest WsAdapter** = stock `@WebSocketGateway` + `@SubscribeMessage(\'echo\')` ' +
      'returning `{ event, data }`, user id read in `handleConnection`. **Socket.IO** = stock Nest gateway on ' +
      '`@nestjs/platform-socket.io` (IoAdapter, default server options), the client speaking Engine.IO v4 over ' +
      '`transport=websocket` exactly as `socket.io-client` with `transports: [\'websocket\']` does (open packet, `40` connect, ' +
      '`42["echo",data]` events, ping/pong answered).',
    `- 13.1 echo: ${echo.connections} connections, each keeping ${echo.window} requests in flight; ${echo.warmupMs} ms warm-up, then ` +
      `responses counted for ${echo.measureMs} ms. ${echo.rounds} rounds; in each round the contenders take turns in a rotating ` +
      'order; the median round is reported. Payloads are JSON objects of exactly 64 B and 1 KiB (Nest and Socket.IO wrap them ' +
      'in their envelope, ~25 B more). Every connection\'s first response is checked byte for byte.',
    `- 13.2 fan-out: N members connected from ${fanout.membersPerProcess}-connection load-generator processes, each from its own ` +
      '127.0.0.x source address. A burst is B broadcasts of a ' +
      `${fanout.messageBytes} B JSON message (B x N ≈ ${formatRate(fanout.deliveriesPerBurst)} deliveries), each broadcast in its own ` +
      'macrotask, triggered by an IPC control message; the rate is B x N over the time from the first broadcast to the last ' +
      `message received by the last member (one monotonic clock for all processes). One warm-up burst, then ${fanout.bursts} ` +
      'measured; median. Nest WsAdapter is left out: it has no broadcast, its users write the raw ws loop. **raw ws ' +
      '(pre-framed)** builds the frame once with ws\'s `Sender.frame` and writes that buffer to every member\'s TCP socket. ' +
      `Each member count is also run with ${fanout.inFlight.filter((n) => n > 1).join(', ')} broadcasts issued in one macrotask ` +
      '("in flight"), as when several events arrive in one event-loop turn.',
    `- Connect rate: connection churn, ${settings.connect.connections} connections per round opened by ${settings.connect.loaders} ` +
      `load generators (${settings.connect.concurrency} handshakes in flight each, bare TCP sockets) with the user id in ` +
      `the query (raw ws parses it with \`new URL\` at the upgrade, Riverside in \`@OnAuthenticate\`), each closed as soon as ` +
      `its 101 arrives; ${settings.connect.rounds} rounds, contenders alternating, each round on a fresh server process ` +
      `warmed up with ${settings.connect.warmupConnections} connections first (one process's CPU per connection is off by ` +
      'several percent for its whole life). Rate = connections / time ' +
      'from the first connect to the last 101. Server CPU per connection = the server\'s CPU (all threads, from schedstat) ' +
      'from the start of the round until every close is processed, divided by the connections: upgrade, auth, @OnInit and close. ' +
      'A round during which other processes kept more than 0.3 cores busy is run again (up to 3 times).',
    '- Spread = half the range of a contender\'s rounds (or bursts), relative to their median: how much the same server ' +
      'varies from one round to the next on this machine. A difference between contenders smaller than that is noise.',
    `- 13.3 idle memory: ${memory.warmConnections} connections opened and closed first (so lazy initialisation is in the baseline), ` +
      `then ${memory.connections} authenticated idle connections; server memory after 4 forced GCs, before and after, divided by ` +
      'the number of connections. JS heap = `heapUsed`; RSS includes the native socket handles.',
    '',
  );

  const goalRows = goals(results);
  if (goalRows.length > 0) {
    out.push('## Issue 12 goals (medians of paired per-round ratios)', '');
    out.push(
      'Each ratio is Riverside ÷ the baseline measured in the same round (echo, connect: the contenders take turns within a ' +
        'round) or the same burst number (fan-out: the contenders run one after the other on the same connections count). ' +
        'Server CPU per message does not depend on how busy the load generators were, so it is the steadier measure on a ' +
        'shared VM; spread = half the range of the ratios relative to their median.',
      '',
    );
    out.push(table(['goal', 'median ratio', 'spread', 'every round', 'goal', 'verdict'], goalRows), '');
  }

  out.push('## SPEC 13 targets', '');
  out.push(table(['target', 'measured', 'verdict'], verdicts(results)), '');
  const echoSpreads = results.echo.filter((row) => row.contender === 'raw-ws' || row.contender === 'riverside').map((row) => spread(row.rates));
  if (echoSpreads.length > 0) {
    out.push(
      `Read the echo verdicts with the spread in mind: raw ws and Riverside varied by ${echoSpreads.join(', ')} from round to ` +
        'round in this run, comparable to the 10% band, so "within 10%" can flip between runs. The server CPU per ' +
        'message and the micro-benchmarks below are the steadier measure of what Riverside adds.',
      '',
    );
  }

  out.push('## 13.1 Echo (msgs/s, higher is better)', '');
  for (const bytes of echo.payloadBytes) {
    const rows = results.echo.filter((row) => row.payloadBytes === bytes);
    const raw = rows.find((row) => row.contender === 'raw-ws')?.msgsPerSec;
    const rawUs = rows.find((row) => row.contender === 'raw-ws')?.serverUsPerMsg;
    out.push(`### ${bytes === 1024 ? '1 KiB' : `${bytes} B`} payload`, '');
    out.push(
      table(
        ['contender', 'msgs/s (median)', 'vs raw ws', 'server CPU', 'server CPU µs/msg', 'vs raw ws', 'load-gen CPU', 'spread', 'every round'],
        rows.map((row) => [
          labelOf(row.contender),
          `**${formatRate(row.msgsPerSec)}**`,
          formatRatio(ratio(row.msgsPerSec, raw)),
          percent(row.serverCpu),
          row.serverUsPerMsg.toFixed(2),
          formatRatio(ratio(row.serverUsPerMsg, rawUs)),
          percent(row.clientCpu),
          spread(row.rates),
          row.rates.map(formatRate).join(', ') + (row.closed > 0 ? ` (${row.closed} connections closed!)` : ''),
        ]),
      ),
      '',
    );
  }

  out.push('## 13.2 Fan-out (deliveries/s, higher is better)', '');
  out.push(
    table(
      ['members', 'in flight', 'contender', 'broadcasts per burst', 'deliveries/s (median)', 'vs raw ws', 'server send loop only', 'server CPU µs/delivery', 'vs pre-framed raw ws', 'spread', 'every burst'],
      results.fanout.map((row) => {
        const same = (id: string) => results.fanout.find((r) => r.contender === id && r.members === row.members && r.inFlight === row.inFlight);
        return [
          row.members.toLocaleString('en-US'),
          String(row.inFlight),
          labelOf(row.contender),
          String(row.broadcasts),
          `**${formatRate(row.deliveriesPerSec)}**`,
          formatRatio(ratio(row.deliveriesPerSec, same('raw-ws')?.deliveriesPerSec)),
          formatRate(row.serverDeliveriesPerSec),
          row.serverUsPerDelivery.toFixed(2),
          formatRatio(ratio(row.serverUsPerDelivery, same('raw-ws-framed')?.serverUsPerDelivery)),
          spread(row.rates),
          row.rates.map(formatRate).join(', '),
        ];
      }),
    ),
    '',
  );

  if (results.connect.length > 0) {
    out.push('## Connect rate with a query-string auth (higher is better)', '');
    const rawConnect = results.connect.find((row) => row.contender === 'raw-ws');
    out.push(
      table(
        ['contender', 'connections per round', 'conn/s (median)', 'vs raw ws', 'server CPU µs/conn', 'vs raw ws', 'spread', 'every round'],
        results.connect.map((row) => [
          labelOf(row.contender),
          row.connections.toLocaleString('en-US'),
          `**${formatRate(row.connectionsPerSec)}**`,
          formatRatio(ratio(row.connectionsPerSec, rawConnect?.connectionsPerSec)),
          row.serverUsPerConnection.toFixed(0),
          formatRatio(ratio(row.serverUsPerConnection, rawConnect?.serverUsPerConnection)),
          spread(row.rates),
          row.rates.map(formatRate).join(', '),
        ]),
      ),
      '',
    );
  }

  out.push('## 13.3 Idle memory per connection (lower is better)', '');
  const rawMemory = results.memory.find((row) => row.contender === 'raw-ws');
  out.push(
    table(
      ['contender', 'connections', 'JS heap', 'external', 'RSS', 'heap vs raw ws', 'RSS vs raw ws'],
      results.memory.map((row) => [
        labelOf(row.contender),
        row.connections.toLocaleString('en-US'),
        `**${formatBytes(row.heapPerConnection)}**`,
        formatBytes(row.externalPerConnection),
        formatBytes(row.rssPerConnection),
        formatRatio(ratio(row.heapPerConnection, rawMemory?.heapPerConnection)),
        formatRatio(ratio(row.rssPerConnection, rawMemory?.rssPerConnection)),
      ]),
    ),
    '',
  );

  if (results.micro.length > 0) {
    out.push('## Micro-benchmarks: user space only (higher is better)', '');
    out.push(
      'One process, sockets that discard what is written (a `Duplex` under a real `ws` WebSocket), so the kernel\'s ' +
        'loopback send, most of a delivery above, is left out. Dispatch = a text frame as ws\'s receiver hands it over, ' +
        'through decode, handler and encode, to `send`; fan-out = one 64 B message to every member (ops are deliveries). ' +
        'Raw ws and Riverside take turns three times; medians. Source: bench/micro.ts.',
      '',
    );
    out.push(
      table(
        ['benchmark', 'size', 'raw ws ops/s', 'Riverside ops/s', 'Riverside vs raw ws'],
        results.micro.map((row) => [
          row.name,
          row.size,
          formatRate(row.rawOpsPerSec),
          `**${formatRate(row.riversideOpsPerSec)}**`,
          formatRatio(row.riversideOpsPerSec / row.rawOpsPerSec),
        ]),
      ),
      '',
    );
  }

  out.push('![benchmark chart](results.png)', '');
  return out.join('\n');
}

// ---- chart ---------------------------------------------------------------------------------

interface Bar {
  label: string;
  value: number;
  color: string;
  note: string;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function panel(x: number, y: number, width: number, height: number, title: string, bars: Bar[], format: (v: number) => string): string {
  const parts: string[] = [];
  parts.push(`<text x="${x + width / 2}" y="${y + 18}" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`);
  const top = y + 52;
  const bottom = y + height - 42;
  const max = Math.max(...bars.map((bar) => (Number.isFinite(bar.value) ? bar.value : 0)), 1e-9);
  const slot = width / Math.max(bars.length, 1);
  const barWidth = Math.min(64, slot * 0.6);
  parts.push(`<line x1="${x + 6}" y1="${bottom}" x2="${x + width - 6}" y2="${bottom}" stroke="#444" stroke-width="1"/>`);
  bars.forEach((bar, i) => {
    const cx = x + slot * i + slot / 2;
    const value = Number.isFinite(bar.value) ? bar.value : 0;
    const barHeight = ((bottom - top) * value) / max;
    parts.push(`<rect x="${cx - barWidth / 2}" y="${bottom - barHeight}" width="${barWidth}" height="${barHeight}" fill="${bar.color}"/>`);
    parts.push(`<text x="${cx}" y="${bottom - barHeight - 18}" text-anchor="middle" font-size="12">${escapeXml(format(bar.value))}</text>`);
    parts.push(`<text x="${cx}" y="${bottom - barHeight - 5}" text-anchor="middle" font-size="11" fill="#555">${escapeXml(bar.note)}</text>`);
    parts.push(`<text x="${cx}" y="${bottom + 16}" text-anchor="middle" font-size="12">${escapeXml(bar.label)}</text>`);
  });
  return parts.join('\n');
}

function svg(results: Results): string {
  const panels: { title: string; bars: Bar[]; format: (v: number) => string }[] = [];
  const bar = (id: string, value: number, base: number | undefined): Bar => ({
    label: shortLabel[id] ?? id,
    value,
    color: ALL_CONTENDERS.find((c) => c.id === id)?.color ?? '#999',
    note: id === 'raw-ws' ? 'baseline' : `${formatRatio(ratio(value, base))} raw ws`,
  });
  for (const bytes of results.settings.echo.payloadBytes) {
    const rows = results.echo.filter((row) => row.payloadBytes === bytes);
    if (rows.length === 0) continue;
    const raw = rows.find((row) => row.contender === 'raw-ws')?.msgsPerSec;
    panels.push({
      title: `Echo ${bytes === 1024 ? '1 KiB' : `${bytes} B`}: msgs/s (higher is better)`,
      bars: rows.map((row) => bar(row.contender, row.msgsPerSec, raw)),
      format: formatRate,
    });
  }
  for (const members of results.settings.fanout.members) {
    for (const inFlight of results.settings.fanout.inFlight) {
      const rows = results.fanout.filter((row) => row.members === members && row.inFlight === inFlight);
      if (rows.length === 0) continue;
      const raw = rows.find((row) => row.contender === 'raw-ws')?.deliveriesPerSec;
      panels.push({
        title: `Fan-out to ${members.toLocaleString('en-US')}${inFlight > 1 ? `, ${inFlight} in flight` : ''}: deliveries/s`,
        bars: rows.map((row) => bar(row.contender, row.deliveriesPerSec, raw)),
        format: formatRate,
      });
    }
  }
  if (results.connect.length > 0) {
    const raw = results.connect.find((row) => row.contender === 'raw-ws')?.connectionsPerSec;
    panels.push({
      title: 'Connections opened per second, query auth',
      bars: results.connect.map((row) => bar(row.contender, row.connectionsPerSec, raw)),
      format: formatRate,
    });
  }
  if (results.memory.length > 0) {
    const raw = results.memory.find((row) => row.contender === 'raw-ws');
    panels.push({
      title: 'Idle connection: JS heap bytes (lower is better)',
      bars: results.memory.map((row) => bar(row.contender, row.heapPerConnection, raw?.heapPerConnection)),
      format: formatBytes,
    });
    panels.push({
      title: 'Idle connection: RSS bytes (lower is better)',
      bars: results.memory.map((row) => bar(row.contender, row.rssPerConnection, raw?.rssPerConnection)),
      format: formatBytes,
    });
  }
  const columns = 3;
  const panelWidth = 420;
  const panelHeight = 300;
  const header = 56;
  const width = columns * panelWidth;
  const height = header + Math.ceil(panels.length / columns) * panelHeight + 10;
  const { machine } = results;
  const body = panels.map((p, i) =>
    panel((i % columns) * panelWidth, header + Math.floor(i / columns) * panelHeight, panelWidth, panelHeight, p.title, p.bars, p.format),
  );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="18" font-weight="bold">nestjs-riverside benchmark (one run, one machine: compare the ratios)</text>`,
    `<text x="${width / 2}" y="44" text-anchor="middle" font-size="12" fill="#555">${escapeXml(
      `${machine.date.slice(0, 10)}, Node ${machine.node}, ${machine.cores} cores (${machine.cpu}), ${machine.pinning}`,
    )}</text>`,
    ...body,
    '</svg>',
  ].join('\n');
}

// ---- files ---------------------------------------------------------------------------------

/** The last `npm run bench:presence` (bench/presence/RESULTS.md), carried into RESULTS.md. */
export function presenceSection(dir: string): string {
  let presence: string;
  try {
    presence = readFileSync(join(dir, 'presence', 'RESULTS.md'), 'utf8');
  } catch {
    return '';
  }
  const body = presence.replace(/^# Presence benchmark\n+/, '').replace(/^(#+) /gm, '#$1 ');
  return `\n## Presence (SPEC 16.4)\n\nCopied from bench/presence/RESULTS.md, which \`npm run bench:presence\` writes (a separate run).\n\n${body}`;
}

/**
 * Writes results.json, RESULTS.md, results.svg (and results.png when a converter is installed)
 * into `dir`; the presence section comes from `benchDir`/presence/RESULTS.md. Returns the paths written.
 */
export function writeReports(dir: string, results: Results, benchDir: string): string[] {
  results.machine.loadAfter ||= loadavg().map((value) => value.toFixed(2)).join(' ');
  const written: string[] = [];
  const write = (name: string, content: string) => {
    writeFileSync(join(dir, name), content);
    written.push(join(dir, name));
  };
  write('results.json', `${JSON.stringify(results, null, 2)}\n`);
  // The section `npm run bench:scale` writes (between its markers) stays.
  let previous = '';
  try {
    previous = readFileSync(join(dir, 'RESULTS.md'), 'utf8');
  } catch {
    // First run.
  }
  const scaleSection = /<!-- bench:scale start -->[\s\S]*<!-- bench:scale end -->/.exec(previous)?.[0];
  write('RESULTS.md', `${(markdown(results) + presenceSection(benchDir)).trimEnd()}\n${scaleSection ? `\n${scaleSection}\n` : ''}`);
  write('results.svg', svg(results));
  // librsvg's rsvg-convert, else ImageMagick (which needs an SVG delegate, often librsvg).
  const svgPath = join(dir, 'results.svg');
  const pngPath = join(dir, 'results.png');
  const attempts: [string, string[]][] = [
    ['rsvg-convert', ['-b', 'white', '-o', pngPath, svgPath]],
    ['convert', ['-density', '96', svgPath, pngPath]],
  ];
  const failures: string[] = [];
  for (const [command, args] of attempts) {
    const converted = spawnSync(command, args, { encoding: 'utf8' });
    if (converted.status === 0) {
      written.push(pngPath);
      return written;
    }
    failures.push(`${command}: ${converted.error?.message ?? converted.stderr.trim().split('\n')[0]}`);
  }
  console.error(`[bench] no PNG (install librsvg2-bin or imagemagick); bench/results.svg is the chart. ${failures.join('; ')}`);
  return written;
}
