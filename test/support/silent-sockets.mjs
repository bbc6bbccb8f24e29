// Opens SILENT_COUNT TCP connections to 127.0.0.1:SILENT_PORT from SILENT_FROM (a 127.0.0.x
// source address) and sends nothing. Prints {"settled": {...}} once every attempt connected or
// failed, then holds the sockets until stdin closes (so a crashed test leaves nothing behind).
import { connect } from 'node:net';

const port = Number(process.env.SILENT_PORT);
const count = Number(process.env.SILENT_COUNT);
const localAddress = process.env.SILENT_FROM ?? '127.0.0.1';
const sockets = [];
let connected = 0;
let failed = 0;
let closedByServer = 0;
let answered503 = 0;
let answered408 = 0;
let pending = count;

function settleOne() {
  if (--pending === 0) console.log(JSON.stringify({ settled: { connected, failed } }));
}

function open(i) {
  if (i >= count) return;
  const socket = connect({ port, host: '127.0.0.1', localAddress });
  sockets.push(socket);
  let settled = false;
  const once = () => {
    if (!settled) {
      settled = true;
      settleOne();
      open(i + BATCH);
    }
  };
  socket.on('connect', () => {
    connected++;
    once();
  });
  socket.on('data', (chunk) => {
    const text = chunk.toString('latin1');
    if (text.startsWith('HTTP/1.1 503')) answered503++;
    if (text.startsWith('HTTP/1.1 408')) answered408++;
  });
  socket.on('error', () => {
    if (!settled) failed++;
    once();
  });
  socket.on('close', () => {
    closedByServer++;
  });
}

// A bounded number of connects in flight, so that the listen backlog is not the bottleneck.
const BATCH = 50;
for (let i = 0; i < BATCH; i++) open(i);

process.stdin.on('data', () => {
  console.log(JSON.stringify({ report: { connected, failed, closedByServer, answered503, answered408 } }));
});
process.stdin.on('end', () => {
  for (const socket of sockets) socket.destroy();
  process.exit(0);
});
setTimeout(() => process.exit(2), 120_000).unref();
