// Presence costs and bounds (issue 8, SPEC 16.4), on the built package (dist/): `npm run bench:presence`.
//
// Three Riverside processes (test/cluster/fixtures/cluster-node.mjs, default presence options) on
// Redis (REDIS_URL, or BROKER=nats with NATS_URL), real WebSocket clients from this process:
//   1. broker messages and bytes per join and per leave (one at a time, so no batching helps);
//   2. 10,000 members of one channel spread over the 3 nodes: members() time inside each node;
//   3. churn of 500 joins/leaves per second for CHURN_S seconds over the 3 nodes, then the time
//      until all 3 nodes list exactly the members the clients hold;
//   4. a node's start: a 4th node joins; the state messages the others send it (on its own topic,
//      or on the shared one), the bytes the broker delivers to nodes, and the time until its
//      members() is complete;
//   5. replica memory per remote member (in this process, NodeReplica from dist/, --expose-gc).
// Writes bench/presence/RESULTS.md and prints it. Loopback only; stops by itself.
//
//   MEMBERS=10000      members of the channel of step 2
//   CHURN_S=10         seconds of churn in step 3, at CHURN_RATE=500 joins/leaves per second
//   PRESENCE_OUT=dir   where RESULTS.md goes (default bench/presence/)
//   PRESENCE_SMOKE=1   every step at a tiny scale (300 members, 1 s of churn over 60 sessions,
//                      20 single joins, a 2,000-member replica): a few seconds, figures
//                      meaningless. The suite's smoke (test/bench/presence-smoke.e2e-spec.ts) runs
//                      it; needs PRESENCE_OUT, so that it never replaces bench/presence/RESULTS.md.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus, loadavg } from 'node:os';
import WebSocket from 'ws';
import { startClusterNode } from '../lib/cluster-node.mjs';

const BROKER = process.env.BROKER ?? 'redis';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const SMOKE = process.env.PRESENCE_SMOKE === '1';
if (SMOKE && process.env.PRESENCE_OUT === undefined) {
  throw new Error('PRESENCE_SMOKE=1 needs PRESENCE_OUT=<directory>: a smoke run must not replace bench/presence/RESULTS.md');
}
const OUT_DIR = process.env.PRESENCE_OUT ?? fileURLToPath(new URL('.', import.meta.url));
const MEMBERS = Number(process.env.MEMBERS ?? (SMOKE ? 300 : 10_000));
const CHURN_S = Number(process.env.CHURN_S ?? (SMOKE ? 1 : 10));
const CHURN_RATE = Number(process.env.CHURN_RATE ?? 500);
/** Step 1: joins (then leaves) one at a time. */
const JOINS = SMOKE ? 20 : 200;
/** Step 3: the sessions that join and leave. */
const CHURNERS = SMOKE ? 60 : 600;
/** Step 4: remote members in the replica weighed. */
const REPLICA_MEMBERS = SMOKE ? 2000 : 100_000;
const PREFIX = `rvbench-presence-${process.pid}-${Date.now()}`;
const PRESENCE_TOPIC = 'presence:cluster';

if (typeof global.gc !== 'function') throw new Error('run with node --expose-gc (npm run bench:presence does)');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

function startNode() {
  // The members sit idle for as long as the benchmark runs; the single session of step 1 is in
  // JOINS channels at once (the default maxChannelsPerSession is 100).
  return startClusterNode({ RIVERSIDE_TRANSPORT: BROKER, REDIS_URL, NATS_URL, RIVERSIDE_PREFIX: PREFIX, IDLE_TIMEOUT: '0', RIVERSIDE_MAX_CHANNELS_PER_SESSION: String(JOINS) });
}

/** A WebSocket client that answers one request at a time. */
async function client(url, options = {}, attempts = 3) {
  const ws = new WebSocket(url, { handshakeTimeout: 20_000, ...options });
  const waiting = [];
  ws.on('message', (data) => waiting.shift()?.(JSON.parse(data.toString())));
  try {
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
  } catch (error) {
    if (attempts <= 1) throw error;
    return client(url, options, attempts - 1);
  }
  ws.on('error', () => {});
  return {
    ws,
    /** Sends a question and waits for its answer; a node that never answers (its handler threw) fails the run. */
    ask(message) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer within 60 s to ${JSON.stringify(message)} (see the node's log above)`)), 60_000);
        waiting.push((answer) => {
          clearTimeout(timer);
          resolve(answer);
        });
        ws.send(JSON.stringify(message));
      });
    },
  };
}

/**
 * Counts what the nodes say on the shared presence topic (by type), and the state messages on
 * every presence topic: the shared one, read by every node, or a node's own, read by that node.
 */
async function brokerObserver() {
  const counts = { messages: 0, bytes: 0, byType: {}, bytesByType: {}, states: { shared: { messages: 0, bytes: 0 }, own: { messages: 0, bytes: 0 } } };
  const count = (payload, shared) => {
    if (payload.includes('"t":"state"')) {
      const states = shared ? counts.states.shared : counts.states.own;
      states.messages++;
      states.bytes += payload.length;
    }
    if (!shared) return;
    counts.messages++;
    counts.bytes += payload.length;
    try {
      const type = JSON.parse(payload.toString()).t;
      counts.byType[type] = (counts.byType[type] ?? 0) + 1;
      counts.bytesByType[type] = (counts.bytesByType[type] ?? 0) + payload.length;
    } catch {}
  };
  if (BROKER === 'redis') {
    const { Redis } = await import('ioredis');
    const redis = new Redis(REDIS_URL);
    await redis.psubscribe(`${PREFIX}:presence:*`);
    redis.on('pmessageBuffer', (_pattern, channel, payload) => count(payload, channel.toString() === `${PREFIX}:${PRESENCE_TOPIC}`));
    return { counts, close: () => redis.disconnect() };
  }
  const { connect } = await import('@nats-io/transport-node');
  const nats = await connect({ servers: NATS_URL });
  nats.subscribe(`${PREFIX}.presence.*`, { callback: (_error, message) => count(Buffer.from(message.data), message.subject === `${PREFIX}.presence.cluster`) });
  await nats.flush();
  return { counts, close: () => nats.close() };
}

function snapshot(counts) {
  return { messages: counts.messages, bytes: counts.bytes, deltas: counts.byType.delta ?? 0, deltaBytes: counts.bytesByType.delta ?? 0, hb: counts.byType.hb ?? 0, hbBytes: counts.bytesByType.hb ?? 0 };
}

/**
 * Heap a replica holds per remote member (a session in one channel, meta `{ nick }`): its maps,
 * and the ids and meta as a node gets them off the wire (parsed from JSON, one copy per op).
 */
async function replicaMemory() {
  const { NodeReplica } = await import('../../dist/cluster/presence/node-replica.js');
  const count = REPLICA_MEMBERS;
  for (let n = 0; n < 4; n++) global.gc();
  const before = process.memoryUsage().heapUsed;
  const replica = new NodeReplica('node', 0);
  const wire = [];
  for (let n = 0; n < count; n++) {
    wire.push(JSON.stringify(['s+', `user-${n}`, `session-${n}`]));
    wire.push(JSON.stringify(['m+', `room-${n % 100}`, `user-${n}`, `session-${n}`, { nick: `User ${n}` }]));
  }
  let ops = JSON.parse(`[${wire.join(',')}]`);
  wire.length = 0;
  replica.apply(ops);
  ops = null;
  for (let n = 0; n < 4; n++) global.gc();
  const after = process.memoryUsage().heapUsed;
  if (replica.sessions.size !== count) throw new Error('replica did not take every op');
  return (after - before) / count;
}

async function main() {
  const loadBefore = loadavg().map((value) => value.toFixed(2)).join(' ');
  const startedAt = Date.now();
  const observer = await brokerObserver();
  const nodes = await Promise.all([startNode(), startNode(), startNode()]);
  await sleep(1500);
  const probes = await Promise.all(nodes.map((node, index) => client(`${node.url}?user=probe-${index}`)));

  const progress = (what) => process.stderr.write(`bench:presence: ${what} (${Math.round((Date.now() - startedAt) / 1000)} s)\n`);
  progress('3 nodes up');
  // 1. Broker traffic per join and per leave, one at a time.
  const single = await client(`${nodes[0].url}?user=single`);
  await sleep(200);
  let before = snapshot(observer.counts);
  for (let n = 0; n < JOINS; n++) {
    await single.ask({ join: `single-${n}`, meta: { nick: `User ${n}` } });
    await sleep(5);
  }
  await sleep(300);
  let after = snapshot(observer.counts);
  const perJoin = { deltas: (after.deltas - before.deltas) / JOINS, bytes: (after.deltaBytes - before.deltaBytes) / JOINS };
  before = snapshot(observer.counts);
  for (let n = 0; n < JOINS; n++) {
    await single.ask({ leave: `single-${n}` });
    await sleep(5);
  }
  await sleep(300);
  after = snapshot(observer.counts);
  const perLeave = { deltas: (after.deltas - before.deltas) / JOINS, bytes: (after.deltaBytes - before.deltaBytes) / JOINS };
  const heartbeatSize = after.hb > 0 ? after.hbBytes / after.hb : NaN;

  progress('broker traffic per join/leave measured');
  // 2. 10,000 members of one channel over the 3 nodes.
  const members = [];
  const connectedAt = Date.now();
  for (let batch = 0; batch < MEMBERS; batch += 400) {
    if (batch % 2000 === 0) progress(`${batch} members joined`);
    await Promise.all(
      Array.from({ length: Math.min(400, MEMBERS - batch) }, async (_, offset) => {
        const n = batch + offset;
        const member = await client(`${nodes[n % 3].url}?user=m${n}&sid=s${n}`, { localAddress: `127.0.0.${2 + (n % 3)}` });
        await member.ask({ join: 'big', meta: { nick: `User ${n}` } });
        members.push(member);
      }),
    );
  }
  const joinedIn = Date.now() - connectedAt;
  progress(`${MEMBERS} members joined`);
  let agreedAt = 0;
  for (;;) {
    const answers = await Promise.all(probes.map((probe) => probe.ask({ members: 'big', timed: true })));
    if (answers.every((answer) => answer.count === MEMBERS && answer.complete)) break;
    if (Date.now() - connectedAt > 120_000) throw new Error(`nodes never agreed on ${MEMBERS} members: ${JSON.stringify(answers)}`);
    await sleep(50);
  }
  agreedAt = Date.now() - connectedAt;
  const timings = [];
  for (let round = 0; round < 20; round++) {
    const answers = await Promise.all(probes.map((probe) => probe.ask({ members: 'big', timed: true })));
    for (const answer of answers) timings.push(answer.tookMs);
  }
  const roundTrips = [];
  for (let round = 0; round < 5; round++) {
    const askedAt = performance.now();
    const answer = await probes[round % 3].ask({ members: 'big' });
    roundTrips.push(performance.now() - askedAt);
    if (answer.members.members.length !== MEMBERS) throw new Error('a full answer lacked members');
  }

  progress('members() timed');
  // 3. Churn: CHURN_RATE joins/leaves per second, then time to agreement.
  const churners = await Promise.all(Array.from({ length: CHURNERS }, (_, n) => client(`${nodes[n % 3].url}?user=c${n}&sid=s${n}`)));
  const truth = new Set();
  let churnOps = 0;
  const churnStart = performance.now();
  const before3 = snapshot(observer.counts);
  const inflight = new Set();
  while (performance.now() - churnStart < CHURN_S * 1000) {
    const due = Math.floor(((performance.now() - churnStart) / 1000) * CHURN_RATE);
    while (churnOps < due) {
      const n = Math.floor(Math.random() * churners.length);
      if (inflight.has(n)) {
        churnOps++;
        continue;
      }
      inflight.add(n);
      const joining = !truth.has(n);
      if (joining) truth.add(n);
      else truth.delete(n);
      churners[n].ask(joining ? { join: 'churn', meta: { n: churnOps } } : { leave: 'churn' }).then(() => inflight.delete(n));
      churnOps++;
    }
    await sleep(5);
  }
  while (inflight.size > 0) await sleep(1);
  const quietAt = performance.now();
  const churnSeconds = (quietAt - churnStart) / 1000;
  const after3 = snapshot(observer.counts);
  const expected = [...truth].map((n) => `c${n}`).sort().join(',');
  let converged = NaN;
  for (;;) {
    const answers = await Promise.all(probes.map((probe) => probe.ask({ members: 'churn' })));
    const lists = answers.map((answer) => answer.members.members.map((member) => member.userId).sort().join(','));
    if (lists.every((list) => list === expected) && answers.every((answer) => answer.members.complete)) {
      converged = performance.now() - quietAt;
      break;
    }
    if (performance.now() - quietAt > 30_000) throw new Error('the nodes did not converge within 30 s after the churn');
    await sleep(10);
  }

  progress('churn converged');
  // 4. A node's start: what the others send it, and what every node has to read of it.
  const statesBefore = structuredClone(observer.counts.states);
  const startAskedAt = performance.now();
  const newcomer = await startNode();
  const newcomerProbe = await client(`${newcomer.url}?user=probe-new`);
  let newcomerComplete = NaN;
  for (;;) {
    const answer = await newcomerProbe.ask({ members: 'big', timed: true });
    if (answer.count === MEMBERS && answer.complete) {
      newcomerComplete = performance.now() - startAskedAt;
      break;
    }
    if (performance.now() - startAskedAt > 60_000) throw new Error(`the new node never listed the ${MEMBERS} members: ${JSON.stringify(answer)}`);
    await sleep(20);
  }
  nodes.push(newcomer);
  probes.push(newcomerProbe);
  await sleep(500);
  const started = {};
  for (const topic of ['shared', 'own']) {
    started[topic] = { messages: observer.counts.states[topic].messages - statesBefore[topic].messages, bytes: observer.counts.states[topic].bytes - statesBefore[topic].bytes };
  }
  // The broker hands a message on the shared topic to every node (the sender too), one on a node's own topic to that node.
  const deliveredToNodes = started.shared.bytes * nodes.length + started.own.bytes;
  const kb = (bytes) => `${Math.round(bytes / 1024).toLocaleString('en-US')} KiB`;

  progress("a node's start measured");
  // 5. Memory of the replica per remote member.
  const bytesPerMember = await replicaMemory();

  for (const socket of [...members, ...churners, ...probes, single]) socket.ws.terminate();
  // Let the nodes shut down (they print their members' leave events) before this process goes.
  await Promise.all(
    nodes.map(
      (node) =>
        new Promise((resolve) => {
          node.child.once('exit', resolve);
          node.child.kill('SIGTERM');
          setTimeout(resolve, 10_000).unref();
        }),
    ),
  );
  observer.close();
  const loadAfter = loadavg().map((value) => value.toFixed(2)).join(' ');

  const report = `# Presence benchmark

Written by \`npm run bench:presence\` (bench/presence/run.mjs) on ${new Date().toISOString().slice(0, 10)}; rerun it rather than editing this file.
${SMOKE ? '\n**Smoke run (PRESENCE_SMOKE=1): a tiny scale that checks the harness; the figures mean nothing.**\n' : ''}
- Machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), shared with other work: load average ${loadBefore} before, ${loadAfter} after; Node ${process.version}; broker: ${BROKER}; run took ${Math.round((Date.now() - startedAt) / 1000)} s.
- Three Riverside processes (test/cluster/fixtures/cluster-node.mjs on dist/), default presence options (presenceHeartbeat 1000 ms, presenceTimeout 10000 ms); WebSocket clients in the benchmark process; broker traffic counted by a subscriber of the presence topic.

| measure | result |
| --- | --- |
| members() of a ${MEMBERS.toLocaleString('en-US')}-member channel spread over 3 nodes, time inside the node (60 calls) | median ${median(timings).toFixed(2)} ms, max ${Math.max(...timings).toFixed(2)} ms |
| the same, as a client sees it: WebSocket round trip with the ${MEMBERS.toLocaleString('en-US')} members as JSON (5 calls) | median ${median(roundTrips).toFixed(1)} ms |
| ${MEMBERS.toLocaleString('en-US')} clients connected and joined | in ${(joinedIn / 1000).toFixed(1)} s; all 3 nodes listed all of them ${(agreedAt / 1000).toFixed(1)} s after the first connected |
| broker messages per join, one at a time | ${perJoin.deltas.toFixed(2)} delta(s), ${Math.round(perJoin.bytes)} bytes (meta \`{"nick":"User 123"}\`) |
| broker messages per leave, one at a time | ${perLeave.deltas.toFixed(2)} delta(s), ${Math.round(perLeave.bytes)} bytes |
| broker messages per join/leave under churn (several changes of one node in one event-loop turn share a delta) | ${((after3.deltas - before3.deltas) / churnOps).toFixed(2)} deltas per change; ${Math.round((after3.bytes - before3.bytes) / churnOps)} bytes per change on the presence topic |
| heartbeats | 1 message (${Math.round(heartbeatSize)} bytes) per node per presenceHeartbeat, whatever the number of members |
| churn | ${churnOps} joins/leaves in ${churnSeconds.toFixed(1)} s (${Math.round(churnOps / churnSeconds)}/s) over ${CHURNERS} sessions on 3 nodes |
| convergence after the churn stops: all 3 nodes list exactly the members the clients hold, complete | ${converged.toFixed(0)} ms |
| a node's start: a 4th node joins the 3 (${(MEMBERS + CHURNERS + 4).toLocaleString('en-US')} sessions, ${MEMBERS.toLocaleString('en-US')} members of one channel) | its members() complete ${(newcomerComplete / 1000).toFixed(2)} s after it was spawned; ${started.own.messages} state messages on its own topic (${kb(started.own.bytes)}), ${started.shared.messages} on the shared topic (${kb(started.shared.bytes)}); ${kb(deliveredToNodes)} delivered to nodes |
| replica memory per remote member (a session in one channel, meta \`{ nick }\`, its ids and meta as parsed off the wire; heap, after GC) | ${Math.round(bytesPerMember)} bytes |
`;
  mkdirSync(OUT_DIR, { recursive: true });
  writeFileSync(join(OUT_DIR, 'RESULTS.md'), report);
  console.log(report);
  process.exit(0);
}

const deadline = setTimeout(() => {
  console.error('bench:presence: gave up after 10 minutes');
  process.exit(1);
}, 600_000);
deadline.unref();
await main();
