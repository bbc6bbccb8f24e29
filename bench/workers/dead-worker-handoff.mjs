// `node bench/workers/dead-worker-handoff.mjs [policy]` (loopback, bounded, no Riverside: plain
// Node `cluster` and `http`): 3 workers serve short HTTP requests, 64 in flight from a client
// process, while the primary kills a worker (SIGKILL) and forks a new one every 1.2 s, 5 times.
// Prints how many requests failed at once (the killed worker's connections, reset) and how many
// got no answer at all within the client's 15 s timeout. What it answers: with round-robin ('rr',
// Node's default on Linux) the primary hands a connection to a worker and keeps its own copy
// until the worker says it took it; when the worker dies first, Node never closes that copy,
// and the client waits on a connection nobody reads (bench/PROFILE.md, "Which worker gets a
// connection"). 'none' hands nothing over.
import cluster from 'node:cluster';
import { fork } from 'node:child_process';
import http from 'node:http';

const PORT = Number(process.env.HANDOFF_PORT ?? 29123);
const policy = process.argv[2] === 'none' ? 'none' : 'rr';

if (process.argv[2] === 'client') {
  const agent = new http.Agent({ keepAlive: false });
  let inFlight = 0;
  let done = 0;
  let failed = 0;
  let unanswered = 0;
  let stopping = false;
  const request = () => {
    if (stopping) return;
    inFlight++;
    const finish = () => {
      inFlight--;
      request();
    };
    const req = http.get({ host: '127.0.0.1', port: PORT, path: '/', agent, timeout: 15_000 }, (res) => {
      res.resume();
      res.on('end', () => {
        done++;
        finish();
      });
    });
    req.on('timeout', () => {
      unanswered++;
      req.destroy(new Error('no answer within 15 s'));
    });
    req.on('error', () => {
      failed++;
      finish();
    });
  };
  for (let i = 0; i < 64; i++) request();
  setTimeout(() => (stopping = true), 8000);
  const check = setInterval(() => {
    if (!stopping || inFlight !== 0) return;
    clearInterval(check);
    process.send({ done, failed, unanswered });
  }, 100);
} else if (cluster.isPrimary) {
  cluster.schedulingPolicy = policy === 'none' ? cluster.SCHED_NONE : cluster.SCHED_RR;
  for (let i = 0; i < 3; i++) cluster.fork();
  let listening = 0;
  cluster.on('listening', () => {
    if (++listening !== 3) return;
    const client = fork(new URL(import.meta.url).pathname, ['client']);
    let kills = 0;
    const killer = setInterval(() => {
      Object.values(cluster.workers)[0].process.kill('SIGKILL');
      cluster.fork();
      if (++kills === 5) clearInterval(killer);
    }, 1200);
    client.on('message', ({ done, failed, unanswered }) => {
      console.log(`${policy}: ${kills} workers killed; ${done} requests answered, ${failed} failed at once, ${unanswered} never answered (15 s)`);
      for (const worker of Object.values(cluster.workers)) worker.kill();
      process.exit(0);
    });
  });
} else {
  http.createServer((req, res) => {
    const until = Date.now() + 2; // a little work per request, as a busy worker has
    while (Date.now() < until);
    res.end('ok');
  }).listen(PORT);
}
