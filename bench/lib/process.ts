import { readdirSync, readFileSync } from 'node:fs';

/**
 * CLOCK_MONOTONIC in ns. It is one clock for every process on the machine, so the load
 * generators' timestamps compare with the server's.
 */
export function nowNs(): number {
  return Number(process.hrtime.bigint());
}

/**
 * CPU seconds a process has used, all its threads (Linux); NaN elsewhere. Read from each
 * thread's /proc/<pid>/task/<tid>/schedstat (ns of CPU time) rather than /proc/<pid>/stat,
 * whose utime and stime are whole clock ticks (10 ms): a 200 ms measurement read in ticks is
 * only good to ±5%. Falls back to the ticks where schedstat is not compiled in.
 */
export function cpuSecondsOf(pid: number): number {
  const precise = schedstatSecondsOf(pid);
  return Number.isNaN(precise) ? tickSecondsOf(pid) : precise;
}

function schedstatSecondsOf(pid: number): number {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        // "<ns on CPU> <ns waiting for a CPU> <timeslices>"
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[0]);
      } catch (error) {
        // A thread that exited between the listing and the read.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' && (error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
      }
    }
    return ns / 1e9;
  } catch {
    return Number.NaN;
  }
}

function tickSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/**
 * How many times a process's main thread (its event loop) gave up the CPU to wait: each is one
 * wake-up to come. From /proc/<pid>/task/<pid>/status (Linux); NaN elsewhere.
 */
export function waitsOf(pid: number): number {
  try {
    const match = /^voluntary_ctxt_switches:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8'));
    return match === null ? Number.NaN : Number(match[1]);
  } catch {
    return Number.NaN;
  }
}

/** USER_HZ: 100 on every Linux this runs on. */
const CLOCK_TICKS = 100;

export function ownCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** The JSON config a child process is started with (argv[2]). */
export function childConfig<T>(): T {
  return JSON.parse(process.argv[2] ?? '{}') as T;
}

/** Sends to the orchestrator; resolves once the message is handed to the IPC channel. */
export function send(message: object): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

/**
 * Every child stops by itself: when the orchestrator goes away, and after a hard deadline
 * whatever happens.
 */
export function boundLifetime(maxMs: number): void {
  process.on('disconnect', () => process.exit(0));
  setTimeout(() => {
    console.error(`[bench] ${process.argv[1]} exceeded its ${maxMs} ms budget; exiting`);
    process.exit(3);
  }, maxMs).unref();
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function cpuTimes(): { busy: number; total: number } {
  try {
    // The aggregate line: user nice system idle iowait irq softirq steal ...
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((sum, value) => sum + value, 0);
    return { busy: total - fields[3] - fields[4], total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/** CPU seconds the whole machine has been busy, all cores together (0 when /proc is not there). */
export function machineBusySeconds(): number {
  return cpuTimes().busy / CLOCK_TICKS;
}

/** How many cores the whole machine kept busy over `sampleMs` (0 when /proc is not there). */
export async function busyCores(sampleMs: number, cores: number): Promise<number> {
  const before = cpuTimes();
  await sleep(sampleMs);
  const after = cpuTimes();
  const total = after.total - before.total;
  return total > 0 ? ((after.busy - before.busy) / total) * cores : 0;
}
