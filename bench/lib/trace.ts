// Opt-in diagnostics for bench:scale's latency tail (SCALE_TRACE_DIR=dir): every process of the
// run records its GC pauses on the monotonic clock the latency samples use (process.hrtime,
// CLOCK_MONOTONIC, shared by every process of the machine), and writes them to
// dir/<role>-<pid>.json when it exits; bench/trace-tail.ts lines them up with the slow deliveries.
// Off by default: nothing is observed or kept unless the variable is set.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PerformanceObserver, performance } from 'node:perf_hooks';

export const TRACE_DIR = process.env.SCALE_TRACE_DIR;

/** One GC pause: start (monotonic ns), duration (ms), V8's kind (1 scavenge, 4 mark-compact, 8 incremental, 16 weak callbacks). */
export type GcPause = [startNs: number, ms: number, kind: number];

export interface TraceFile {
  role: string;
  pid: number;
  gc: GcPause[];
  /** Load generators: [send ns, receive ns] of every user delivery received while measuring. */
  samples?: [number, number][];
}

/**
 * Records this process' GC pauses (when SCALE_TRACE_DIR is set) and writes them, with whatever
 * `extra` holds then, on exit. performance.now() counts from the process' own origin: the offset
 * to the monotonic clock is taken once, both clocks being read back to back.
 */
export function traceProcess(role: string, extra: () => Partial<TraceFile> = () => ({}), flushEveryMs = 0): void {
  if (TRACE_DIR === undefined) return;
  const dir = TRACE_DIR;
  const offsetNs = Number(process.hrtime.bigint()) - performance.now() * 1e6;
  const gc: GcPause[] = [];
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as { detail?: { kind?: number } }).detail?.kind ?? 0;
      gc.push([Math.round(offsetNs + entry.startTime * 1e6), entry.duration, kind]);
    }
  }).observe({ type: 'gc' });
  const flush = () => writeFileSync(join(dir, `${role}-${process.pid}.json`), JSON.stringify({ role, pid: process.pid, gc, ...extra() } satisfies TraceFile));
  process.on('exit', flush);
  // A process that dies by a signal (Nest's shutdown hooks re-raise SIGTERM) has no 'exit' event.
  if (flushEveryMs > 0) setInterval(flush, flushEveryMs).unref();
}
