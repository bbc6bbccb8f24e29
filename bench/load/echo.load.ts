// Echo load generator (SPEC 13.1): `connections` sockets, each keeping `window` requests in
// flight; a response is answered by the next request at once. After `warmupMs` it counts the
// responses received for `measureMs`, and reports them with the CPU the server and this
// process used meanwhile.
import { childConfig, cpuSecondsOf, boundLifetime, nowNs, ownCpuSeconds, send, sleep } from '../lib/process.js';
import { BenchSocket, type Protocol, requestText, responseText } from './bench-socket.js';
import { clientFrame, pooled } from './wire.js';

export interface EchoLoadConfig {
  protocol: Protocol;
  host: string;
  port: number;
  path: string;
  serverPid: number;
  connections: number;
  window: number;
  payload: string;
  warmupMs: number;
  measureMs: number;
  localAddress?: string;
}

export interface EchoLoadResult {
  type: 'result';
  messages: number;
  seconds: number;
  serverCpuSeconds: number;
  clientCpuSeconds: number;
  closed: number;
}

const config = childConfig<EchoLoadConfig>();
boundLifetime(config.warmupMs + config.measureMs + 60_000);

const frame = clientFrame(requestText(config.protocol, config.payload));
const expected = responseText(config.protocol, config.payload);
// `window` frames back to back: a refill of n requests is one write of a slice of it.
const burst = Buffer.concat(Array.from({ length: config.window }, () => frame));

const sockets = await pooled(
  Array.from({ length: config.connections }, (_, i) => i),
  50,
  (i) =>
    BenchSocket.connect({
      protocol: config.protocol,
      host: config.host,
      port: config.port,
      path: config.path,
      user: `echo-${i}`,
      role: 'echo',
      localAddress: config.localAddress,
    }),
);

let running = true;
const answered = sockets.map((socket) => {
  // Check the first response of every connection, then only count.
  const first = socket.nextText();
  let seen = 0;
  socket.onData = () => {
    const count = socket.reader.count;
    const fresh = count - seen;
    seen = count;
    if (running && fresh > 0) socket.socket.write(burst.subarray(0, fresh * frame.length));
  };
  socket.socket.write(burst);
  return first.then((text) => {
    // The checked response also needs its replacement request.
    socket.collect = false;
    if (running) socket.socket.write(frame);
    if (text !== expected) throw new Error(`unexpected echo: ${text.slice(0, 80)} (expected ${expected.slice(0, 80)})`);
  });
});
await Promise.all(answered);

await sleep(config.warmupMs);
const total = () => sockets.reduce((sum, socket) => sum + socket.reader.count, 0);
const start = { messages: total(), at: nowNs(), server: cpuSecondsOf(config.serverPid), client: ownCpuSeconds() };
await sleep(config.measureMs);
const end = { messages: total(), at: nowNs(), server: cpuSecondsOf(config.serverPid), client: ownCpuSeconds() };
running = false;

const result: EchoLoadResult = {
  type: 'result',
  messages: end.messages - start.messages,
  seconds: (end.at - start.at) / 1e9,
  serverCpuSeconds: end.server - start.server,
  clientCpuSeconds: end.client - start.client,
  closed: sockets.filter((socket) => !socket.isOpen).length,
};
for (const socket of sockets) socket.destroy();
await send(result);
process.exit(0);
