// Run after npm run build: sh bench/gc/scavenges.sh bench/gc/wire-weak-handles.mjs <v8|new>
// Per-message cost of the wire encode + decode of a delivery, and what it leaves to the scavenger.
import { decodeWireMessage, encodeWireMessage } from '../../dist/cluster/wire-message.js';
const mode = process.argv[2]; // 'new' or 'v8'
const perTurn = 100, turns = 3000;
const { DefaultSerializer, deserialize } = await import('node:v8');
let sink = 0, turn = 0;
const address = { origin: 'node-abcdef123456', session: null };
function v8Encode(message) { const s = new DefaultSerializer(); s.writeHeader(); s.writeValue(message); return s.releaseBuffer(); }
const t0 = performance.now();
function tick() {
  for (let i = 0; i < perTurn; i++) {
    const message = { t: Number(process.hrtime.bigint()) };
    if (mode === 'new') { const wire = encodeWireMessage({ ...address, kind: 'deliver', message }); sink += decodeWireMessage(wire).message.t > 0 ? 1 : 0; }
    else { const wire = v8Encode(message); sink += deserialize(wire).t > 0 ? 1 : 0; }
  }
  if (++turn < turns) setImmediate(tick);
  else console.error(`${mode}: ${(performance.now() - t0).toFixed(0)} ms for ${perTurn * turns}, sink ${sink}`);
}
tick();
