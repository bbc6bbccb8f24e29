// `node bench/tail/redis-publish-cost.mjs [publishes] [perTurn]` (under the bench lock, Redis at
// REDIS_URL): this process' CPU (user + system, process.cpuUsage) per PUBLISH sent through ioredis
// in several ways, `perTurn` publishes per event-loop turn on a corked socket (as RedisTransport
// sends them), to a channel nobody subscribes to. Each way runs 3 times, alternated; the median
// is printed. What it answers: how much of a cross-worker delivery's CPU the ioredis call itself
// is, and what a lower-level call would save (bench/PROFILE.md, "The Redis path profiled").
import { Command, Redis } from 'ioredis';

const total = Number(process.argv[2] ?? 100_000);
const perTurn = Number(process.argv[3] ?? 4);
const client = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
await client.connect();
const channel = `riverside-publish-cost-${process.pid}:user:42`;
const payload = Buffer.alloc(40, 7);
const noop = () => {};

/** What RedisTransport.publish does (async, the client's promise awaited) and ClusterRelay.send's .catch. */
async function transportPublish() {
  if (client.status !== 'ready') throw new Error('not ready');
  await client.publish(channel, payload);
}
const ways = {
  'publish() in an async wrapper, .catch (as shipped)': () => transportPublish().catch(noop),
  'publish(), .catch': () => client.publish(channel, payload).catch(noop),
  'sendCommand(new Command(...)), .catch': () => client.sendCommand(new Command('publish', [channel, payload], { replyEncoding: null })).catch(noop),
  'nothing sent (the loop itself)': () => Promise.resolve().catch(noop),
};

function run(send) {
  return new Promise((resolve) => {
    let sent = 0;
    let last;
    const start = process.cpuUsage();
    const turn = () => {
      client.stream.cork();
      for (let i = 0; i < perTurn && sent < total; i++, sent++) last = send();
      client.stream.uncork();
      if (sent < total) setImmediate(turn);
      else Promise.resolve(last).then(() => {
        const used = process.cpuUsage(start);
        resolve((used.user + used.system) / total);
      });
    };
    turn();
  });
}

const results = Object.fromEntries(Object.keys(ways).map((name) => [name, []]));
for (let round = 0; round < 4; round++) {
  for (const [name, send] of Object.entries(ways)) {
    const us = await run(send);
    if (round > 0) results[name].push(us); // round 0 warms up
  }
}
for (const [name, values] of Object.entries(results)) {
  values.sort((a, b) => a - b);
  console.log(`${values[1].toFixed(2).padStart(7)} µs CPU per publish (${values.map((v) => v.toFixed(2)).join(', ')})  ${name}`);
}
await client.quit();
