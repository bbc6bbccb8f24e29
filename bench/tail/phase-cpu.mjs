// `node bench/tail/phase-cpu.mjs run.log samples.jsonl [phase]`: where the 2 cores went during one
// rate phase of bench:scale. run.log is the bench's output with each line prefixed by the epoch
// ms it was printed at (run.sh does it); the phase (a regular expression, default
// 'redis remote 5000/s') spans from the line before its result line to that line. Prints, per
// process kind (server = primary + workers, load generators, redis-server, orchestrator) and
// thread (the main thread, or V8's and libuv's helpers), the CPU run and the run-queue wait in ms
// per second, user and system time, and the machine's /proc/stat shares.
import { readFileSync } from 'node:fs';

const [logFile, samplesFile, phase = 'redis remote 5000/s'] = process.argv.slice(2);
if (!samplesFile) throw new Error('usage: node bench/tail/phase-cpu.mjs run.log samples.jsonl [phase]');
const lines = readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((line) => [Number(line.slice(0, 13)), line.slice(14)]);
const at = lines.findIndex(([, text]) => new RegExp(phase).test(text) && /p99/.test(text));
if (at < 1) throw new Error(`no result line matching ${phase} in ${logFile}`);
const [start, end] = [lines[at - 1][0], lines[at][0]];
const samples = readFileSync(samplesFile, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
const a = samples.filter((s) => s.wall >= start)[0];
const b = samples.filter((s) => s.wall <= end).at(-1);
const seconds = (b.wall - a.wall) / 1000;
const perSecond = (ns) => ns / 1e6 / seconds;

const kind = (cmd) =>
  /scale-cluster/.test(cmd) ? 'server' : /scale\.load/.test(cmd) ? 'load' : /redis-server/.test(cmd) ? 'redis' : /scale\.js/.test(cmd) ? 'orchestrator' : 'other node';
const threads = {};
const ticks = {};
for (const [pid, now] of Object.entries(b.procs)) {
  const then = a.procs[pid];
  if (!then) continue;
  const k = kind(now.cmd);
  ticks[k] ??= [0, 0];
  ticks[k][0] += ((now.utime - then.utime) * 10) / seconds;
  ticks[k][1] += ((now.stime - then.stime) * 10) / seconds;
  for (const [tid, [run, wait]] of Object.entries(now.threads)) {
    const before = then.threads[tid];
    if (!before) continue;
    const key = `${k}, ${tid === pid ? 'main thread' : 'helper threads'}`;
    threads[key] ??= [0, 0];
    threads[key][0] += perSecond(run - before[0]);
    threads[key][1] += perSecond(wait - before[1]);
  }
}
const machine = b.machine.map((v, i) => ((v - a.machine[i]) * 10) / seconds); // USER_HZ ticks of 10 ms
console.log(lines[at][1].slice(0, 160));
console.log(`${seconds.toFixed(1)} s; machine, ms/s (all cores): user ${machine[0].toFixed(0)}, system ${machine[2].toFixed(0)}, softirq ${machine[6].toFixed(0)}, idle ${machine[3].toFixed(0)}, steal ${machine[7].toFixed(0)}`);
for (const [key, [run, wait]] of Object.entries(threads).sort((x, y) => y[1][0] - x[1][0])) {
  if (run >= 1) console.log(`${run.toFixed(1).padStart(7)} ms/s run ${wait.toFixed(1).padStart(7)} ms/s waiting for a CPU   ${key}`);
}
for (const [k, [user, system]] of Object.entries(ticks)) if (user + system >= 1) console.log(`${k}: user ${user.toFixed(0)} ms/s, system ${system.toFixed(0)} ms/s`);
