// Attributes a rate phase's latency tail (SCALE_TRACE_DIR runs of bench:scale):
//   node bench/dist/trace-tail.js <dir> [phase name, default redis-remote-5000-1: the first round at 5,000/s]
// Reads the GC pauses of every process (dir/<role>-<pid>.json) and the run-queue series of the
// phase (dir/phase-<name>.json), takes the deliveries sent during the phase, and for the slowest
// 1% says what overlapped them: a GC pause in the receiving load generator (known exactly), in any
// worker or the primary (which worker relayed is not recorded), and CPU waits of each role; next to
// the same for every delivery, so that a coincidence by chance can be told apart.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { PhaseTrace } from './lib/run-queue-trace.js';
import type { TraceFile } from './lib/trace.js';

const [dir, phaseName = 'redis-remote-5000-1'] = process.argv.slice(2);
const phase = JSON.parse(readFileSync(join(dir, `phase-${phaseName}.json`), 'utf8')) as PhaseTrace;
const files = readdirSync(dir).filter((f) => /^(load|worker|primary)-\d+\.json$/.test(f)).map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as TraceFile);

interface Sample { sent: number; got: number; ms: number; load: TraceFile }
const samples: Sample[] = [];
for (const file of files) {
  for (const [sent, got] of file.samples ?? []) if (sent >= phase.startNs && sent <= phase.endNs) samples.push({ sent, got, ms: (got - sent) / 1e6, load: file });
}
samples.sort((a, b) => a.ms - b.ms);
const pct = (p: number) => samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))].ms;
const p99 = pct(99);
const slow = samples.filter((s) => s.ms >= p99);
console.log(`${phaseName}: ${samples.length} deliveries, p50 ${pct(50).toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, p999 ${pct(99.9).toFixed(2)} ms, max ${samples[samples.length - 1].ms.toFixed(2)} ms`);

/** GC pause time (ms) of `file` inside [from, to]. */
function gcInside(file: TraceFile, from: number, to: number): number {
  let ms = 0;
  for (const [start, duration] of file.gc) {
    const end = start + duration * 1e6;
    if (end > from && start < to) ms += (Math.min(end, to) - Math.max(start, from)) / 1e6;
  }
  return ms;
}
const workers = files.filter((f) => f.role === 'worker');
const primary = files.filter((f) => f.role === 'primary');
const loads = files.filter((f) => f.role === 'load');

type Probe = (s: Sample) => number;
const probes: Record<string, Probe> = {
  'GC in the receiving load generator': (s) => gcInside(s.load, s.sent, s.got),
  'GC in any other load generator': (s) => Math.max(0, ...loads.filter((l) => l !== s.load).map((l) => gcInside(l, s.sent, s.got))),
  'GC in a worker (most of any one)': (s) => Math.max(0, ...workers.map((w) => gcInside(w, s.sent, s.got))),
  'GC in the primary': (s) => Math.max(0, ...primary.map((w) => gcInside(w, s.sent, s.got))),
};

// Run-queue waits: per pid, interpolated cumulative wait at a time.
const pidList = Object.values(phase.pids).flat();
const roleOf = new Map<number, string>();
for (const [role, pids] of Object.entries(phase.pids)) for (const pid of pids) roleOf.set(pid, role);
function waitedMs(index: number, from: number, to: number): number {
  const at = (t: number) => {
    const rows = phase.rows;
    let lo = 0;
    let hi = rows.length - 1;
    if (t <= rows[0][0]) return rows[0][2 + 2 * index];
    if (t >= rows[hi][0]) return rows[hi][2 + 2 * index];
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (rows[mid][0] <= t) lo = mid;
      else hi = mid;
    }
    const [a, b] = [rows[lo], rows[hi]];
    return a[2 + 2 * index] + ((b[2 + 2 * index] - a[2 + 2 * index]) * (t - a[0])) / (b[0] - a[0]);
  };
  return (at(to) - at(from)) / 1e6;
}
const indexOfPid = new Map(pidList.map((pid, i) => [pid, i]));
for (const role of Object.keys(phase.pids)) {
  probes[`CPU wait of a ${role} process (most of any one)`] = (s) => Math.max(0, ...phase.pids[role].map((pid) => waitedMs(indexOfPid.get(pid)!, s.sent, s.got)));
}
probes['CPU wait of the receiving load generator'] = (s) => {
  const i = indexOfPid.get(s.load.pid);
  return i === undefined ? Number.NaN : waitedMs(i, s.sent, s.got);
};

// What the tail would be without each cause: p99 of the deliveries that no pause of it overlapped.
const p99Of = (xs: Sample[]) => (xs.length === 0 ? Number.NaN : [...xs].sort((a, b) => a.ms - b.ms)[Math.floor(0.99 * xs.length)].ms);
for (const name of ['GC in a worker (most of any one)', 'GC in the receiving load generator']) {
  const kept = samples.filter((s) => probes[name](s) === 0);
  console.log(`p99 without the ${samples.length - kept.length} deliveries overlapped by ${name}: ${p99Of(kept).toFixed(2)} ms`);
}
const noGc = samples.filter((s) => Object.entries(probes).every(([name, probe]) => !name.startsWith('GC') || !(probe(s) > 0)));
console.log(`p99 without the ${samples.length - noGc.length} deliveries overlapped by any GC pause: ${p99Of(noGc).toFixed(2)} ms`);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log('\nwhat overlapped a delivery (ms inside its [sent, received]): slowest 1% vs all');
console.log('probe | slow: share > 1 ms, median ms | all: share > 1 ms, median ms');
for (const [name, probe] of Object.entries(probes)) {
  const s = slow.map(probe);
  const a = samples.map(probe);
  const share = (xs: number[]) => ((100 * xs.filter((x) => x > 1).length) / xs.length).toFixed(1);
  console.log(`${name} | ${share(s)}%, ${median(s).toFixed(2)} | ${share(a)}%, ${median(a).toFixed(2)}`);
}

// When the slow deliveries were sent: bursts or spread?
const BUCKET_MS = 50;
const buckets = new Map<number, number>();
for (const s of slow) {
  const b = Math.floor((s.sent - phase.startNs) / (BUCKET_MS * 1e6));
  buckets.set(b, (buckets.get(b) ?? 0) + 1);
}
const top = [...buckets.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12);
console.log(`\nslow deliveries in ${buckets.size} of ${Math.ceil((phase.endNs - phase.startNs) / (BUCKET_MS * 1e6))} ${BUCKET_MS} ms windows; the busiest windows:`);
for (const [b, n] of top) {
  const from = phase.startNs + b * BUCKET_MS * 1e6;
  const to = from + BUCKET_MS * 1e6;
  const gcs = files.map((f) => [f, gcInside(f, from - 20e6, to)] as const).filter(([, ms]) => ms > 0.5).map(([f, ms]) => `${f.role}${f.pid}:${ms.toFixed(1)}`);
  const waits = pidList.map((pid, i) => [pid, waitedMs(i, from - 20e6, to)] as const).filter(([, ms]) => ms > 2).map(([pid, ms]) => `${roleOf.get(pid)}${pid}:${ms.toFixed(1)}`);
  const worst = Math.max(...slow.filter((s) => Math.floor((s.sent - phase.startNs) / (BUCKET_MS * 1e6)) === b).map((s) => s.ms));
  console.log(`  +${((b * BUCKET_MS) / 1000).toFixed(2)} s: ${n} slow (worst ${worst.toFixed(1)} ms); GC ms ${gcs.join(' ') || '-'}; CPU wait ms ${waits.join(' ') || '-'}`);
}

// GC totals over the phase per role.
console.log('\nGC over the phase, per process: pauses, total ms, longest ms (kinds)');
for (const f of files) {
  const inPhase = f.gc.filter(([start]) => start >= phase.startNs && start <= phase.endNs);
  if (inPhase.length === 0) continue;
  const kinds: Record<number, number> = {};
  for (const [, , k] of inPhase) kinds[k] = (kinds[k] ?? 0) + 1;
  console.log(`  ${f.role} ${f.pid}: ${inPhase.length}, ${inPhase.reduce((n, [, d]) => n + d, 0).toFixed(1)}, ${Math.max(...inPhase.map(([, d]) => d)).toFixed(1)} (${JSON.stringify(kinds)})`);
}
console.log('\nCPU wait over the phase, per process (ms waited / ms run)');
const first = phase.rows[0];
const last = phase.rows[phase.rows.length - 1];
for (const [i, pid] of pidList.entries()) {
  console.log(`  ${roleOf.get(pid)} ${pid}: ${((last[2 + 2 * i] - first[2 + 2 * i]) / 1e6).toFixed(0)} / ${((last[1 + 2 * i] - first[1 + 2 * i]) / 1e6).toFixed(0)}`);
}

// Inside the long GC pauses: did the main thread work, wait for a CPU, or sleep (blocked, e.g.
// on the GC's helper threads)? From the 5 ms schedstat samples, interpolated.
function runMs(index: number, from: number, to: number): number {
  const rows = phase.rows;
  const at = (t: number) => {
    let i = rows.findIndex((r) => r[0] >= t);
    if (i <= 0) i = i === -1 ? rows.length - 1 : 1;
    const [a, b] = [rows[i - 1], rows[i]];
    return a[1 + 2 * index] + ((b[1 + 2 * index] - a[1 + 2 * index]) * Math.min(1, Math.max(0, (t - a[0]) / (b[0] - a[0]))));
  };
  return (at(to) - at(from)) / 1e6;
}
console.log('\nGC pauses > 5 ms in the phase: pause ms = main thread ran + waited for a CPU + slept (sums over pauses)');
for (const f of files) {
  const index = indexOfPid.get(f.pid);
  if (index === undefined) continue;
  const long = f.gc.filter(([start, ms]) => ms > 5 && start >= phase.startNs && start <= phase.endNs);
  if (long.length === 0) continue;
  let [pause, ran, waited] = [0, 0, 0];
  for (const [start, ms] of long) {
    pause += ms;
    ran += runMs(index, start, start + ms * 1e6);
    waited += waitedMs(index, start, start + ms * 1e6);
  }
  console.log(`  ${f.role} ${f.pid}: ${long.length} pauses, ${pause.toFixed(1)} ms = ran ${ran.toFixed(1)} + waited ${waited.toFixed(1)} + slept ${(pause - ran - waited).toFixed(1)}`);
}
