// `npm run build && node bench/tail/redis-quiet-cost.mjs [perSecond] [seconds] [rounds]` (under
// the bench lock, Redis at REDIS_URL): this process' CPU (user + system, process.cpuUsage) per
// RedisTransport.publish() at a steady rate, one publish per timer tick as a worker sends them
// when deliveries trickle in, for the two ways RedisTransport publishes:
// - answered: a publisher you give (`{ client }`): ioredis reads Redis' reply to each PUBLISH;
// - quiet: its own publisher (`{ url }`), switched to CLIENT REPLY OFF.
// The two alternate, `rounds` times each; the medians and every round are printed. It answers
// what reading the replies costs a publisher (bench/PROFILE.md, "Publishing without replies").
import { Redis } from 'ioredis';
import { RedisTransport } from '../../dist/index.js';

const perSecond = Number(process.argv[2] ?? 2000);
const seconds = Number(process.argv[3] ?? 5);
const rounds = Number(process.argv[4] ?? 5);
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const payload = Buffer.alloc(40, 7);
const noop = () => {};

async function transportOf(mode) {
  const prefix = `riverside-quiet-cost-${process.pid}-${mode}`;
  const transport = mode === 'quiet' ? new RedisTransport({ url, prefix }) : new RedisTransport({ client: new Redis(url), prefix });
  await transport.connect();
  await new Promise((resolve) => setTimeout(resolve, 200)); // the quiet switch is made after 'ready'
  return transport;
}

/** Publishes `perSecond` a second, spread over 1 ms ticks, for `seconds`; µs of CPU per publish. */
function run(transport) {
  return new Promise((resolve) => {
    const total = perSecond * seconds;
    let sent = 0;
    let due = 0;
    const start = process.cpuUsage();
    const began = performance.now();
    const timer = setInterval(() => {
      due = Math.min(total, Math.floor(((performance.now() - began) * perSecond) / 1000));
      while (sent < due) {
        transport.publish('user:42', payload).catch(noop);
        sent++;
      }
      if (sent >= total) {
        clearInterval(timer);
        setTimeout(() => {
          const used = process.cpuUsage(start);
          resolve((used.user + used.system) / total);
        }, 100);
      }
    }, 1);
  });
}

const transports = { answered: await transportOf('answered'), quiet: await transportOf('quiet') };
const results = { answered: [], quiet: [] };
for (let round = 0; round <= rounds; round++) {
  for (const mode of ['answered', 'quiet']) {
    const us = await run(transports[mode]);
    if (round > 0) results[mode].push(us); // round 0 warms up
  }
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
for (const [mode, values] of Object.entries(results)) {
  console.log(`${mode.padEnd(9)} ${median(values).toFixed(2).padStart(7)} µs CPU per publish (${values.map((v) => v.toFixed(2)).join(', ')})`);
}
const pairs = results.quiet.map((q, i) => q / results.answered[i]);
console.log(`quiet / answered, median of paired rounds: ${median(pairs).toFixed(2)}x (${pairs.map((r) => r.toFixed(2)).join(', ')})`);
await Promise.all(Object.values(transports).map((t) => t.close()));
process.exit(0);
