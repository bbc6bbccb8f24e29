// Run: sh bench/gc/scavenges.sh bench/gc/weak-handles.mjs <none|copy|object|serialize|deserialize|json> [per turn] [turns]
// Bisect: what per-message work leaves weak global handles for the scavenger?
import { DefaultSerializer, deserialize, serialize } from 'node:v8';
const mode = process.argv[2];
const perTurn = Number(process.argv[3] ?? 100);
const turns = Number(process.argv[4] ?? 2000);
let sink = 0;
const ops = {
  none: () => { sink += 1; },
  copy: () => { const b = Buffer.allocUnsafe(40); b[0] = 1; sink += b.length; },
  object: () => { const o = { t: process.hrtime.bigint() }; sink += o.t > 0n ? 1 : 0; },
  serialize: () => { const s = new DefaultSerializer(); s.writeHeader(); s.writeValue({ t: 1.5 }); sink += s.releaseBuffer().length; },
  deserialize: (() => { const bytes = serialize({ t: 1.5 }); return () => { sink += deserialize(bytes).t; }; })(),
  json: (() => { const text = JSON.stringify({ t: 1.5 }); return () => { sink += JSON.parse(Buffer.from(text).toString()).t; }; })(),
};
const op = ops[mode];
let turn = 0;
const t0 = performance.now();
function tick() {
  for (let i = 0; i < perTurn; i++) op();
  if (++turn < turns) setImmediate(tick);
  else console.error(`${mode}: ${(performance.now() - t0).toFixed(0)} ms, sink ${sink}`);
}
tick();
