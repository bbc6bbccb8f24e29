// `node bench/ws/double-end.mjs [connections]`: how many stream errors a plain `ws` server (no
// Riverside) builds per closed connection, by how the client ends it. The evidence behind issue
// 12's connect figure (bench/PROFILE.md, "The `NodeError` of every closed connection is ws's
// Receiver"): ws's `socketOnClose` ends its receiver again after `socketOnEnd` ended it, and
// Node's `Writable.end()` on a finished stream builds an ERR_STREAM_ALREADY_FINISHED error with
// its stack trace, which nobody reads. Raw ws and Riverside both pay it; only a ws release can
// remove it.
//
// It counts, without changing what happens, every `end()` called on a Writable that is already
// finished, by the stream's class, over `connections` connections of each ending:
// - fin: the client sends its FIN right after the 101 (what the connect benchmark's clients do);
// - close: the client sends a close frame, waits for the server's, then its FIN;
// - reset: the client resets the connection after the 101.
import { once } from 'node:events';
import { connect } from 'node:net';
import { Duplex, Writable } from 'node:stream';
import { WebSocketServer } from 'ws';

const CONNECTIONS = Number(process.argv[2] ?? 500);
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
/** A masked close frame (1000), as a client sends it. */
const CLOSE_FRAME = Buffer.from([0x88, 0x82, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8]);

const counts = new Map();
// Duplex (and so net.Socket) holds its own reference to Writable's end(): both are counted.
for (const Stream of [Writable, Duplex]) {
  const originalEnd = Stream.prototype.end;
  Stream.prototype.end = function countedEnd(...args) {
    if (this._writableState?.finished) counts.set(this.constructor.name, (counts.get(this.constructor.name) ?? 0) + 1);
    return originalEnd.apply(this, args);
  };
}

const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
await once(server, 'listening');
const { port } = server.address();
let closed = 0;
server.on('connection', (ws) => ws.on('close', () => closed++));

/** Opens one connection, reads the 101, ends it the given way; resolves once the server saw it close. */
function oneConnection(ending) {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let seen = '';
    socket.on('error', () => {}); // the reset ending's own ECONNRESET, if any
    socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    socket.on('data', (chunk) => {
      if (!seen.includes('\r\n\r\n')) {
        seen += chunk.toString('latin1');
        if (!seen.includes('\r\n\r\n')) return;
        if (!seen.startsWith('HTTP/1.1 101')) return reject(new Error(`no 101: ${seen.slice(0, 40)}`));
        if (ending === 'fin') socket.end();
        else if (ending === 'reset') socket.resetAndDestroy();
        else socket.write(CLOSE_FRAME);
        return;
      }
      // The server's close frame: the close handshake is done, the client sends its FIN.
      if (ending === 'close') socket.end();
    });
    socket.on('close', resolve);
  });
}

const results = {};
for (const ending of ['fin', 'close', 'reset']) {
  counts.clear();
  const before = closed;
  for (let i = 0; i < CONNECTIONS; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, CONNECTIONS - i) }, () => oneConnection(ending)));
  }
  while (closed - before < CONNECTIONS) await new Promise((resolve) => setTimeout(resolve, 10));
  await new Promise((resolve) => setTimeout(resolve, 50));
  results[ending] = Object.fromEntries([...counts].map(([name, count]) => [name, +(count / CONNECTIONS).toFixed(2)]));
}
server.close();
console.log(JSON.stringify({ ws: (await import('ws/package.json', { with: { type: 'json' } })).default.version, node: process.version, connections: CONNECTIONS, endOfFinishedStreamPerConnection: results }));
