// `node bench/dist/profile-top.js <file.cpuprofile> [N] [skipMs]`: the N functions (default 10)
// with the most self time in a V8 CPU profile (as written by `node --cpu-prof`, e.g.
// BENCH_PROFILE=riverside), as a markdown table. The first skipMs (default 3000) are left out,
// so that start-up (module loading, Nest bootstrap) does not count; so is idle time. Shares are
// of the busy time that remains.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export function topFunctions(profile: CpuProfile, count: number, skipMs = 0): { name: string; where: string; share: number }[] {
  const byNode = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfTime = new Map<string, { name: string; where: string; us: number }>();
  let busy = 0;
  let elapsedUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byNode.get(profile.samples[i]);
    const us = profile.timeDeltas[i] ?? 0;
    elapsedUs += us;
    if (elapsedUs < skipMs * 1000) continue;
    if (node === undefined || node.callFrame.functionName === '(idle)') continue;
    busy += us;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url === '' ? '' : `${shortUrl(url)}:${lineNumber + 1}`;
    const key = `${functionName}@${where}`;
    const entry = selfTime.get(key) ?? { name: functionName || '(anonymous)', where, us: 0 };
    entry.us += us;
    selfTime.set(key, entry);
  }
  return [...selfTime.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, count)
    .map((entry) => ({ name: entry.name, where: entry.where, share: entry.us / busy }));
}

function shortUrl(url: string): string {
  const path = url.replace(/^file:\/\//, '');
  const modules = path.lastIndexOf('node_modules/');
  if (modules !== -1) return path.slice(modules + 'node_modules/'.length);
  const dist = path.lastIndexOf('/dist/');
  if (dist !== -1) return `riverside ${path.slice(dist + 1)}`;
  return path.startsWith('/') ? relative(process.cwd(), path) : path;
}

if (process.argv[1]?.endsWith('profile-top.js')) {
  const [file, count = '10', skipMs = '3000'] = process.argv.slice(2);
  if (file === undefined) throw new Error('usage: node bench/dist/profile-top.js <file.cpuprofile> [N] [skipMs]');
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const rows = topFunctions(profile, Number(count), Number(skipMs));
  console.log('| # | function | where | self time (share of busy) |');
  console.log('| --- | --- | --- | --- |');
  rows.forEach((row, i) => console.log(`| ${i + 1} | \`${row.name}\` | ${row.where} | ${(100 * row.share).toFixed(1)}% |`));
}
