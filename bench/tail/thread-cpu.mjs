// `node bench/tail/thread-cpu.mjs out.jsonl [everyMs]`: every everyMs (default 1000), one JSON line
// with the run time and run-queue wait (ns, /proc/<pid>/task/<tid>/schedstat) of every thread of
// every node and redis-server process, their user and system ticks (/proc/<pid>/stat), and the
// machine's /proc/stat totals. Read with phase-cpu.mjs. Reading /proc costs a few ms a second.
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';

const [out, everyMs = '1000'] = process.argv.slice(2);
if (!out) throw new Error('usage: node bench/tail/thread-cpu.mjs out.jsonl [everyMs]');

function read(path) {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null; // the process or thread has exited
  }
}

function sample() {
  const procs = {};
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const comm = read(`/proc/${pid}/comm`)?.trim();
    if (comm !== 'node' && comm !== 'redis-server') continue;
    const cmd = (read(`/proc/${pid}/cmdline`) ?? '').replace(/\0/g, ' ').slice(0, 160);
    const stat = read(`/proc/${pid}/stat`)?.split(') ')[1]?.split(' ');
    const threads = {};
    let tids = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      const schedstat = read(`/proc/${pid}/task/${tid}/schedstat`);
      if (schedstat === null) continue;
      const [run, wait] = schedstat.split(' ').map(Number);
      threads[tid] = [run, wait];
    }
    procs[pid] = { cmd, threads, utime: Number(stat?.[11]), stime: Number(stat?.[12]) };
  }
  const machine = readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number);
  appendFileSync(out, `${JSON.stringify({ wall: Date.now(), machine, procs })}\n`);
}

setInterval(sample, Number(everyMs));
sample();
