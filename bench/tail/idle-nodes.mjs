// `node bench/tail/idle-nodes.mjs [nodes] [seconds]` (after `npm run build`, under the bench lock,
// nothing else running): what an idle Riverside cluster costs, node by node. Starts `nodes`
// (default 7) Riverside processes (test/cluster/fixtures/cluster-node.mjs on dist/) on Redis
// (REDIS_URL; BROKER=nats for NATS_URL) with no connection, lets them settle, then reads for
// `seconds` (default 20) each process' CPU time over all its threads and the number of times its
// main thread was put on a CPU (/proc/<pid>/task/*/schedstat, fields 1 and 3): ms of CPU a second
// and wake-ups a second per node, median and range. Presence is what runs in such a cluster
// (heartbeats, the liveness sweep); RIVERSIDE_PRESENCE=off and PRESENCE_HEARTBEAT pass through to
// the nodes. bench/PROFILE.md, "Stop 21".
import { readdirSync, readFileSync } from 'node:fs';
import { startClusterNode } from '../lib/cluster-node.mjs';

const NODES = Number(process.argv[2] ?? 7);
const SECONDS = Number(process.argv[3] ?? 20);
const BROKER = process.env.BROKER ?? 'redis';
const PREFIX = `rvbench-idle-${process.pid}-${Date.now()}`;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function startNode() {
  return startClusterNode({
    RIVERSIDE_TRANSPORT: BROKER,
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    NATS_URL: process.env.NATS_URL ?? 'nats://127.0.0.1:4222',
    RIVERSIDE_PREFIX: PREFIX,
    RIVERSIDE_REPORT_SUBSCRIBED: '0',
  }).then(({ child }) => child);
}

/** [CPU ns of every thread, runs on a CPU of the main thread] of a process. */
function usage(pid) {
  let cpu = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      cpu += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // a thread that ended meanwhile
    }
  }
  const runs = Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[2]);
  return [cpu, runs];
}

const nodes = [];
for (let n = 0; n < NODES; n++) nodes.push(await startNode());
// Every node has heard every other and the start-up's state transfers are over.
await sleep(5000);
const before = nodes.map((child) => usage(child.pid));
await sleep(SECONDS * 1000);
const after = nodes.map((child) => usage(child.pid));
for (const child of nodes) child.kill('SIGTERM');

const perNode = nodes.map((_, n) => ({
  cpuMsPerSecond: (after[n][0] - before[n][0]) / 1e6 / SECONDS,
  wakeUpsPerSecond: (after[n][1] - before[n][1]) / SECONDS,
}));
const summary = (key) => {
  const values = perNode.map((node) => node[key]).sort((a, b) => a - b);
  return `${values[Math.floor(values.length / 2)].toFixed(1)} (${values[0].toFixed(1)}-${values[values.length - 1].toFixed(1)})`;
};
console.log(
  JSON.stringify({
    nodes: NODES,
    seconds: SECONDS,
    broker: BROKER,
    presence: process.env.RIVERSIDE_PRESENCE === 'off' ? 'off' : 'on',
    cpuMsPerSecondPerNode: summary('cpuMsPerSecond'),
    mainThreadWakeUpsPerSecondPerNode: summary('wakeUpsPerSecond'),
  }),
);
process.exit(0);
