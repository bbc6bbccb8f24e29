// Runs sample/dist/main.js (SAMPLE_MAIN) in this process and prints {"url"} once WORKERS cluster
// workers listen, for startNodeProcess. Stops on SIGTERM (runRiversideWorkers' own handling) or
// when stdin closes.
import cluster from 'node:cluster';

if (cluster.isPrimary) {
  let listening = 0;
  cluster.on('listening', (_worker, address) => {
    if (++listening === Number(process.env.WORKERS)) {
      process.stdout.write(`${JSON.stringify({ url: `ws://127.0.0.1:${address.port}/chat` })}\n`);
    }
  });
  process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM'));
  process.stdin.resume();
}
await import(process.env.SAMPLE_MAIN);
