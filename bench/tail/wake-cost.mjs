// `node bench/tail/wake-cost.mjs [seconds]` (under the bench lock, nothing else running): what one
// event-loop wake-up costs on this machine, with nothing to do in it. Plain Node, no Riverside.
// - timer: a process whose only work is an empty setInterval callback, at 1, 10 and 100 wake-ups/s;
// - socket: a process that only reads 1-byte writes from a child process over loopback TCP, at
//   100, 1,000 and 5,000 writes/s (the child paces them with a timer; only the reader is measured).
// For each, the main thread's CPU time and its number of runs on a CPU (fields 1 and 3 of
// /proc/self/task/<pid>/schedstat): µs of CPU per wake-up, less an idle process' (no timer) CPU.
// It answers how much of a delivery's server CPU is the machine's price of waking a process
// (bench/PROFILE.md, "What a wake-up costs here").
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const seconds = Number(process.argv[2] ?? 6);
const [mode, arg1, arg2] = process.argv.slice(3);

/** [CPU ns, runs on a CPU] of this process' main thread. */
function mainThread() {
  const [runNs, , runs] = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ').map(Number);
  return [runNs, runs];
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Main-thread CPU (ms/s) and runs/s over `seconds`, after a second to settle. */
async function measure() {
  await sleep(1000);
  const [cpu0, runs0] = mainThread();
  await sleep(seconds * 1000);
  const [cpu1, runs1] = mainThread();
  return { cpuMsPerSecond: (cpu1 - cpu0) / 1e6 / seconds, runsPerSecond: (runs1 - runs0) / seconds };
}

if (mode === 'timer') {
  const perSecond = Number(arg1);
  if (perSecond > 0) setInterval(() => {}, 1000 / perSecond);
  process.send(await measure());
  process.exit(0);
} else if (mode === 'writer') {
  const socket = net.connect(Number(arg2), '127.0.0.1', () => {
    const perTick = Math.max(1, Math.round(Number(arg1) / 1000));
    setInterval(() => {
      for (let i = 0; i < perTick; i++) socket.write('x');
    }, (1000 * perTick) / Number(arg1));
  });
  socket.on('error', () => process.exit(0));
} else if (mode === 'reader') {
  const perSecond = Number(arg1);
  const server = net.createServer((socket) => socket.on('data', () => {}));
  server.listen(0, '127.0.0.1', async () => {
    const writer = fork(fileURLToPath(import.meta.url), [String(seconds), 'writer', String(perSecond), String(server.address().port)]);
    const figures = await measure();
    writer.kill();
    process.send(figures);
    process.exit(0);
  });
} else {
  const run = (args) =>
    new Promise((resolve) => fork(fileURLToPath(import.meta.url), [String(seconds), ...args]).once('message', resolve));
  const idle = await run(['timer', '0']);
  console.log(`idle process: ${idle.cpuMsPerSecond.toFixed(2)} ms CPU/s, ${idle.runsPerSecond.toFixed(1)} wake-ups/s`);
  const report = (what, figures) => {
    const perWake = ((figures.cpuMsPerSecond - idle.cpuMsPerSecond) * 1000) / (figures.runsPerSecond - idle.runsPerSecond);
    console.log(`${what}: ${figures.cpuMsPerSecond.toFixed(2)} ms CPU/s, ${figures.runsPerSecond.toFixed(0)} wake-ups/s, ${perWake.toFixed(0)} µs per wake-up`);
  };
  for (const perSecond of [1, 10, 100]) report(`timer, ${perSecond}/s`, await run(['timer', String(perSecond)]));
  for (const perSecond of [100, 1000, 5000]) report(`socket reads, ${perSecond} writes/s`, await run(['reader', String(perSecond)]));
}
