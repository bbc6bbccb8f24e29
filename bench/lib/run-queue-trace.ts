// SCALE_TRACE_DIR only: samples, every few ms during a rate phase, how long each process' main
// thread has waited for a CPU (/proc/<pid>/task/<pid>/schedstat, 2nd field, ns) and run, for
// the server, the load generators and redis-server, and writes the series to
// dir/phase-<name>.json. bench/trace-tail.ts lines them up with the slow deliveries.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TRACE_DIR } from './trace.js';

const SAMPLE_MS = 5;

/** A process' main thread: [run ns, wait ns] so far, or null once it is gone. */
function schedstat(pid: number): [number, number] | null {
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ');
    return [Number(run), Number(wait)];
  } catch {
    return null;
  }
}

export interface PhaseTrace {
  name: string;
  startNs: number;
  endNs: number;
  /** role -> pids */
  pids: Record<string, number[]>;
  /** [monotonic ns, then per pid (in the order of `pids`' values) run ns, wait ns] */
  rows: number[][];
}

export interface RunQueueTrace {
  stop(name: string, startNs: number, endNs: number): void;
}

export function traceRunQueues(roles: Record<string, number[]>): RunQueueTrace {
  const redis = spawnSync('pgrep', ['-x', 'redis-server'], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean).map(Number);
  const pids = { ...roles, redis };
  const all = Object.values(pids).flat();
  const rows: number[][] = [];
  const timer = setInterval(() => {
    const row = [Number(process.hrtime.bigint())];
    for (const pid of all) row.push(...(schedstat(pid) ?? [Number.NaN, Number.NaN]));
    rows.push(row);
  }, SAMPLE_MS);
  return {
    stop(name, startNs, endNs) {
      clearInterval(timer);
      const trace: PhaseTrace = { name, startNs, endNs, pids, rows };
      writeFileSync(join(TRACE_DIR!, `phase-${name.replace(/[^\w-]+/g, '_')}.json`), JSON.stringify(trace));
    },
  };
}
