// Run after npm run build: node --expose-gc bench/gc/connection-sweep.mjs 14000
// Cost of one ConnectionSweep pass over N connection-like objects spread over the old space.
import { ConnectionSweep } from '../../dist/connection/connection-sweep.js';
const N = Number(process.argv[2] ?? 14000);
class FakeConnection {
  constructor(now) {
    this.session = {}; this.handler = {}; this.lastSeen = now; this.openedAt = now; this.abandonAt = 0; this.flags = 0;
    for (let i = 0; i < 24; i++) this['f' + i] = i;
  }
  get readPaused() { return (this.flags & 1) !== 0; }
  closeFor() { throw new Error('not expected'); }
}
const set = new Set();
const keep = [];
const now = Math.floor(performance.now());
for (let i = 0; i < N; i++) {
  set.add(new FakeConnection(now));
  keep.push(Buffer.alloc(64), { a: new Array(200).fill(i) }); // ~2 KB of other objects per connection, as a socket and ws have
}
globalThis.gc?.(); globalThis.gc?.();
const sweep = new ConnectionSweep(set, { idleTimeout: 60_000, maxConnectionAge: Infinity, handlerTimeout: 30_000 }, () => now + 1000);
const times = [];
for (let pass = 0; pass < 30; pass++) {
  // Something else touches other memory between passes, as a second of a worker's work would.
  const churn = []; for (let i = 0; i < 20000; i++) churn.push({ i, s: 'x' + i });
  const t0 = performance.now();
  sweep['sweep']();
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
console.log(`${N} connections: sweep median ${times[15].toFixed(3)} ms, max ${times[29].toFixed(3)} ms, min ${times[0].toFixed(3)} ms`);
