// `node bench/tail/perf-split.mjs SCRIPT THREADS DELIVERIES [HZ]`: the server processes' on-CPU
// time per delivery by kind of code, from `perf script -F comm,pid,tid,time,ip,sym,dso` output
// (SCRIPT: `perf record -a -g -F HZ` during one rate phase, cut with `perf script --time`, the
// servers started with SCALE_SERVER_FLAGS=--perf-basic-prof so that JIT frames have names) and
// bench/tail/run.sh's THREADS (threads.jsonl, which tells the server processes from the load
// generators and redis-server). Each sample is classed by its leaf frame: kernel (by the
// syscall on its stack, "+rx" when the kernel was delivering a loopback packet to the peer
// inside that syscall), JS (JIT code and V8 builtins), V8 runtime, GC, Node/libuv C++, libc;
// main threads and helper threads apart. Unlike V8's profiler, perf samples only while a thread
// runs, so a syscall during which the thread was preempted is not charged for the wait.
import { readFileSync } from 'node:fs';

const [script, threads, deliveries, hzArg] = process.argv.slice(2);
if (deliveries === undefined) throw new Error('usage: node bench/tail/perf-split.mjs SCRIPT THREADS DELIVERIES [HZ]');
const hz = Number(hzArg ?? 499);
const servers = new Set();
const others = new Map();
for (const line of readFileSync(threads, 'utf8').split('\n')) {
  if (line === '') continue;
  for (const [pid, proc] of Object.entries(JSON.parse(line).procs)) {
    if (proc.cmd.includes('scale-cluster')) servers.add(pid);
    else if (proc.cmd.trim() !== '') others.set(pid, proc.cmd.includes('redis-server') ? 'redis-server' : proc.cmd.includes('load') ? 'load generators' : 'other');
  }
}

function kernelPart(stack) {
  const rx = /net_rx_action|__netif_receive_skb|process_backlog/.test(stack) ? '+rx' : '';
  if (/__x64_sys_writev|do_writev/.test(stack)) return `writev${rx}`;
  if (/__x64_sys_write\b|ksys_write/.test(stack)) return `write${rx}`;
  if (/__x64_sys_read\b|ksys_read/.test(stack)) return `read${rx}`;
  if (/epoll_wait|ep_poll/.test(stack)) return 'epoll_wait';
  if (!/do_syscall_64/.test(stack) && /asm_sysvec|asm_common_interrupt|__irq_exit|do_softirq|net_rx_action/.test(stack)) return 'interrupts';
  if (/exc_page_fault/.test(stack)) return 'page faults';
  return /do_syscall_64/.test(stack) ? 'other syscalls' : 'other';
}

function kindOf(leaf, stack) {
  if (leaf.includes('[kernel.kallsyms]')) return `kernel: ${kernelPart(stack)}`;
  if (/perf-\d+\.map|Builtins_/.test(leaf)) return 'JS (JIT code, V8 builtins)';
  if (/Scaveng|Heap::|MarkCompact|Sweeper|Evacuat|GCTracer|ConcurrentMarking|MemoryAllocator/.test(leaf)) return 'GC';
  if (/v8::/.test(leaf)) return 'V8 runtime';
  if (/node::|uv_|uv__/.test(leaf)) return 'Node/libuv C++';
  if (/libc|libpthread|ld-linux/.test(leaf)) return 'libc (malloc, ...)';
  return 'other';
}

const samples = new Map();
const add = (key) => samples.set(key, (samples.get(key) ?? 0) + 1);
for (const block of readFileSync(script, 'utf8').split('\n\n')) {
  const lines = block.split('\n').filter(Boolean);
  const head = lines[0]?.trim().match(/^(\S.*?)\s+(\d+)\/(\d+)\s/);
  if (!head) continue;
  const [, comm, pid, tid] = head;
  if (!servers.has(pid)) {
    add(`~ ${others.get(pid) ?? (comm.startsWith('swapper') ? 'idle' : comm)}`);
    continue;
  }
  const stack = lines.slice(1).join('\n');
  add(`${pid === tid ? 'main' : 'helper'} ${kindOf(lines[1] ?? '', stack)}`);
}
const perDelivery = (count) => ((count / hz) * 1e6) / Number(deliveries);
let main = 0;
for (const [key, count] of samples) if (key.startsWith('main')) main += count;
console.log(`server main threads: ${perDelivery(main).toFixed(1)} µs per delivery`);
for (const [key, count] of [...samples].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
  console.log(`${perDelivery(count).toFixed(1).padStart(7)} µs  ${String(count).padStart(6)} samples  ${key}`);
}
