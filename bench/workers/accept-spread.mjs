// `node bench/workers/accept-spread.mjs [policy] [connections] [perSecond]` (loopback, bounded, no
// Riverside: plain Node `cluster` and `net`): how the connections that arrive at a steady rate
// spread over 7 idle workers sharing one port, with Node's round-robin ('rr': the primary accepts
// and hands each one to the next worker) or 'none' (every worker accepts from the shared socket,
// whichever the kernel wakes first). Each connection stays open, as a WebSocket would. Prints the
// count per worker, lowest first. What it answers: README "Workers on one port" and
// docs/scaling.md, on `schedulingPolicy: 'none'` (measured 2026-12-05: bench/PROFILE.md,
// "Which worker gets a connection").
import cluster from 'node:cluster';
import net from 'node:net';

const WORKERS = 7;
// Below Linux's ephemeral range (32768-60999): no client socket of the machine can hold it.
const PORT = Number(process.env.SPREAD_PORT ?? 29124);
const policy = process.argv[2] === 'none' ? 'none' : 'rr';
const total = Number(process.argv[3] ?? 700);
const perSecond = Number(process.argv[4] ?? 100);

if (cluster.isPrimary) {
  cluster.schedulingPolicy = policy === 'none' ? cluster.SCHED_NONE : cluster.SCHED_RR;
  const counts = new Map();
  for (let i = 0; i < WORKERS; i++) cluster.fork().on('message', (count) => counts.set(i, count));
  let listening = 0;
  cluster.on('listening', () => {
    if (++listening === WORKERS) open();
  });
  const open = () => {
    const sockets = [];
    const timer = setInterval(() => {
      sockets.push(net.connect(PORT, '127.0.0.1').on('error', () => {}));
      if (sockets.length < total) return;
      clearInterval(timer);
      setTimeout(() => report(sockets), 1000);
    }, 1000 / perSecond);
  };
  const report = (sockets) => {
    const perWorker = [...counts.values()].sort((a, b) => a - b);
    console.log(`${policy}: ${total} connections at ${perSecond}/s over ${WORKERS} workers: ${perWorker.join(', ')} (fair share ${Math.round(total / WORKERS)})`);
    for (const socket of sockets) socket.destroy();
    for (const worker of Object.values(cluster.workers)) worker.kill();
  };
} else {
  let accepted = 0;
  net.createServer((socket) => {
    socket.on('error', () => {});
    process.send(++accepted);
  }).listen(PORT);
}
