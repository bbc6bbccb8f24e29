// `node bench/tail/profile-window.mjs FROM_MS TO_MS DELIVERIES file.cpuprofile...`: self and
// inclusive time per function of V8 CPU profiles (SCALE_PROFILE_DIR) within one rate phase,
// summed over the files, in µs per delivery. FROM_MS and TO_MS are wall-clock epoch ms (the time
// stamps bench/tail/run.sh puts in front of run.log's lines); a profile's end is taken as its
// file's mtime (the process wrote it on exit), which places each sample within ~0.1 s. `TOP`
// and `ITOP` (environment) bound the two lists. The profiler samples wall-clock time: a thread
// that is preempted inside a syscall (e.g. by the process its write woke) is charged to that
// syscall, so read native frames with perf's on-CPU figures (perf-split.mjs) next to it.
import { readFileSync, statSync } from 'node:fs';

const [from, to, deliveries, ...files] = process.argv.slice(2);
if (files.length === 0) throw new Error('usage: node bench/tail/profile-window.mjs FROM_MS TO_MS DELIVERIES file.cpuprofile...');
const self = new Map();
const inclusive = new Map();
let busy = 0;
let idle = 0;
const short = (url) => {
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) return url.slice(modules + 'node_modules/'.length);
  const dist = url.lastIndexOf('/dist/');
  return dist >= 0 ? url.slice(dist + 1) : url.replace(/^.*\//, '');
};
const keyOf = (frame) => `${frame.functionName || '(anonymous)'} ${short(frame.url)}:${frame.lineNumber + 1}`;
const add = (map, key, us) => map.set(key, (map.get(key) ?? 0) + us);

for (const file of files) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const offsetUs = statSync(file).mtimeMs * 1000 - profile.endTime;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    const atMs = (t + offsetUs) / 1000;
    if (atMs < Number(from) || atMs > Number(to)) continue;
    const us = profile.timeDeltas[i + 1] ?? 0; // until the next sample
    const node = byId.get(profile.samples[i]);
    if (node.callFrame.functionName === '(idle)') {
      idle += us;
      continue;
    }
    busy += us;
    add(self, keyOf(node.callFrame), us);
    const seen = new Set();
    for (let id = node.id; id !== undefined; id = parent.get(id)) {
      const key = keyOf(byId.get(id).callFrame);
      if (!seen.has(key)) add(inclusive, key, us);
      seen.add(key);
    }
  }
}
const per = (us) => (us / Number(deliveries)).toFixed(2).padStart(8);
const share = (us) => `${((100 * us) / busy).toFixed(1)}%`.padStart(6);
console.log(`${files.length} profiles, ${((to - from) / 1000).toFixed(1)} s: busy ${(busy / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms, busy ${per(busy).trim()} µs per delivery`);
console.log('µs/delivery  share  self time');
for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 40))) console.log(per(us), share(us), key);
console.log('µs/delivery  share  inclusive time');
for (const [key, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.ITOP ?? 80))) console.log(per(us), share(us), key);
