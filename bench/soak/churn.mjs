// Connection churn over a server's life: does a Riverside process grow or slow down per
// connection opened and closed? `node bench/soak/churn.mjs` (after `npm run build`) starts
// bench/soak/churn-server.mjs (CHURN_CONTENDER: riverside (default) or raw-ws) with --expose-gc,
// then runs CHURN_BATCHES (10) batches of CHURN_CONNECTIONS (20000) connections, CHURN_CONCURRENCY
// (64) at a time, on bare TCP sockets. After each batch, once the server counts no open
// connection, it asks for a sample (CPU of the batch, then heap, RSS and Riverside's map sizes
// after forced GC) and prints one JSON line.
//
// The mix, by connection index modulo 10:
//   0     refused at the handshake (no user: 401)
//   1     member (joins the channel in @OnInit), reset by the client (RST) after the 101
//   2     member, sends a frame, waits for its echo, closes with a close frame and waits for the server's
//   3     idle, sends a frame, waits for its echo, closed by the client with a FIN (no close frame)
//   4     idle, reset by the client after the 101
//   5..9  idle, closed with a FIN as soon as the 101 arrives (what bench/load/connect.load.ts does)
// CHURN_MIX=connect makes every connection a 5. CHURN_FORCE_GC=0 leaves the forced GCs out of a
// sample; CHURN_SERVER_FLAGS and CHURN_SERVER_LOG trace the server (see below).
// Users repeat modulo CHURN_USERS (1000), so some users have several sessions at once.
// CHURN_SMOKE=1 makes the defaults 2 batches of 1000 connections (the suite's smoke,
// test/bench/churn-smoke.e2e-spec.ts); CHURN_BATCHES and CHURN_CONNECTIONS still win.
// The run gives up (exit 2) after CHURN_MAX_MINUTES (60); the server exits with it.
import { fork } from 'node:child_process';
import { openSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';

const smoke = process.env.CHURN_SMOKE === '1';
const BATCHES = Number(process.env.CHURN_BATCHES ?? (smoke ? 2 : 10));
const CONNECTIONS = Number(process.env.CHURN_CONNECTIONS ?? (smoke ? 1000 : 20_000));
const MAX_MINUTES = Number(process.env.CHURN_MAX_MINUTES ?? 60);
const CONCURRENCY = Number(process.env.CHURN_CONCURRENCY ?? 64);
const USERS = Number(process.env.CHURN_USERS ?? 1000);
const CONTENDER = process.env.CHURN_CONTENDER ?? 'riverside';
/** CHURN_MIX=connect: every connection of kind 5 (the connect scenario's churn), instead of the mix. */
const kindOf = process.env.CHURN_MIX === 'connect' ? () => 5 : (index) => index % 10;

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
/** A masked text frame `{"n":1}` with a zero mask key (the payload goes as is). */
const TEXT_FRAME = Buffer.concat([Buffer.from([0x81, 0x80 | 7, 0, 0, 0, 0]), Buffer.from('{"n":1}')]);
/** A masked close frame, code 1000, zero mask key. */
const CLOSE_FRAME = Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);

// CHURN_SERVER_FLAGS: more V8/Node flags for the server (e.g. --trace-opt --trace-deopt), its
// stdout then into CHURN_SERVER_LOG, where each sample writes a "--- sample" line.
const serverFlags = process.env.CHURN_SERVER_FLAGS?.split(' ').filter(Boolean) ?? [];
const serverLog = process.env.CHURN_SERVER_LOG ? openSync(process.env.CHURN_SERVER_LOG, 'w') : 'inherit';
const server = fork(fileURLToPath(new URL('./churn-server.mjs', import.meta.url)), [], {
  execArgv: ['--expose-gc', ...serverFlags],
  stdio: ['ignore', serverLog, 'inherit', 'ipc'],
  env: { ...process.env, CHURN_CONTENDER: CONTENDER },
});
// Bounded whatever happens; the server also exits when this process goes (its IPC channel closes).
setTimeout(() => {
  console.error(`churn: gave up after ${MAX_MINUTES} minutes`);
  server.kill();
  process.exit(2);
}, MAX_MINUTES * 60_000).unref();
let finished = false;
server.once('exit', (code, signal) => {
  if (finished) return;
  console.error(`churn: the server exited (${signal ?? code}) during the run`);
  process.exit(1);
});
const replies = [];
server.on('message', (message) => replies.shift()?.(message));
const next = () => new Promise((resolve) => replies.push(resolve));
const ask = (command) => {
  const reply = next();
  server.send(command);
  return reply;
};
const { port } = await next();

function request(index) {
  const kind = kindOf(index);
  const user = kind === 0 ? '' : `u${index % USERS}`;
  const role = kind === 1 || kind === 2 ? 'member' : 'idle';
  return `GET /churn?user=${user}&role=${role} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n\r\n`;
}

/** Opens connection `index`, plays its part, resolves once the client side is done with it. */
function churnOne(index, localAddress) {
  const kind = kindOf(index);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress });
    socket.setNoDelay(true);
    let stage = 'handshake';
    socket.once('connect', () => socket.write(request(index)));
    socket.on('error', (error) => (stage === 'done' ? undefined : reject(error)));
    socket.on('close', () => {
      if (stage !== 'done') reject(new Error(`connection ${index} (kind ${kind}) closed at ${stage}`));
    });
    socket.on('data', (chunk) => {
      if (stage === 'handshake') {
        const status = chunk.toString('latin1', 9, 12);
        if (kind === 0) {
          if (status !== '401') return reject(new Error(`connection ${index}: expected 401, got ${status}`));
          stage = 'done';
          socket.destroy();
          return resolve();
        }
        if (status !== '101') return reject(new Error(`connection ${index}: expected 101, got ${status}`));
        if (kind === 1 || kind === 4) {
          stage = 'done';
          socket.resetAndDestroy();
          return resolve();
        }
        if (kind === 2 || kind === 3) {
          stage = 'echo';
          return void socket.write(TEXT_FRAME);
        }
        stage = 'done';
        socket.destroy();
        return resolve();
      }
      if (stage === 'echo') {
        // The echo (a small unmasked text frame) fits in one chunk.
        if (chunk[0] !== 0x81) return reject(new Error(`connection ${index}: expected a text frame, got 0x${chunk[0].toString(16)}`));
        if (kind === 3) {
          stage = 'done';
          socket.destroy();
          return resolve();
        }
        stage = 'closing';
        return void socket.write(CLOSE_FRAME);
      }
      if (stage === 'closing' && chunk[0] === 0x88) {
        stage = 'done';
        socket.end();
        return resolve();
      }
    });
  });
}

/** One source address per batch: 20,000 client-side TIME_WAITs a batch would soon use up one address's ports. */
function churnBatch(batch) {
  const offset = batch * CONNECTIONS;
  const localAddress = `127.0.${2 + (batch >> 8)}.${(batch % 255) + 1}`;
  return new Promise((resolve, reject) => {
    let started = 0;
    let running = 0;
    const onDone = () => {
      running--;
      if (started < CONNECTIONS) launch();
      else if (running === 0) resolve();
    };
    const launch = () => {
      running++;
      churnOne(offset + started++, localAddress).then(onDone, reject);
    };
    while (running < CONCURRENCY && started < CONNECTIONS) launch();
  });
}

async function serverSettled() {
  for (let i = 0; i < 500; i++) {
    if ((await ask({ type: 'open-now' })).openNow === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('the server still counts open connections 10 s after the batch');
}

let previous = await ask({ type: 'sample' });
try {
  for (let batch = 0; batch < BATCHES; batch++) {
    const start = performance.now();
    await churnBatch(batch);
    const ms = performance.now() - start;
    await serverSettled();
    const sample = await ask({ type: 'sample' });
    const line = {
      contender: CONTENDER,
      batch,
      connPerS: Math.round(CONNECTIONS / (ms / 1000)),
      cpuUsPerConn: +((sample.cpuMicros - previous.cpuAfterGcMicros) / CONNECTIONS).toFixed(1),
      // The user/system split counts the previous sample's forced GCs in user time (a few ms).
      userUsPerConn: +((sample.userMicros - previous.userMicros) / CONNECTIONS).toFixed(1),
      systemUsPerConn: +((sample.systemMicros - previous.systemMicros) / CONNECTIONS).toFixed(1),
      gcUsPerConn: +((sample.gcMs * 1000) / CONNECTIONS).toFixed(1),
      gcs: sample.gcCount,
      majorGcs: sample.majorGcs,
      timeWaits: sample.timeWaits,
      heapMB: +(sample.heapUsed / 2 ** 20).toFixed(2),
      rssMB: +(sample.rss / 2 ** 20).toFixed(1),
      externalMB: +(sample.external / 2 ** 20).toFixed(2),
      handles: sample.handles,
      timers: sample.timers,
      ...sample.sizes,
    };
    previous = sample;
    console.log(JSON.stringify(line));
  }
} finally {
  finished = true;
  server.kill();
}
