// The bench:scale section of bench/RESULTS.md, between two markers, so that `npm run bench`
// and `npm run bench:scale` each rewrite only their own part.
import { availableParallelism, cpus, totalmem } from 'node:os';

const START = '<!-- bench:scale start -->';
const END = '<!-- bench:scale end -->';

/* eslint-disable @typescript-eslint/no-explicit-any -- the JSON the orchestrator wrote */
type Results = any;

const n = (value: number, digits = 0) =>
  Number.isFinite(value) ? value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a';

function bar(value: number, max: number, width = 40): string {
  return '#'.repeat(Math.max(1, Math.round((value / max) * width)));
}

/** Each window's p99 and, in parentheses, that of all their samples pooled (one window: '-'). */
function byWindow(row: any): string {
  if (!Array.isArray(row.p99ByRound) || row.p99ByRound.length < 2) return '-';
  return `${row.p99ByRound.map((v: number) => n(v, 1)).join(', ')} (${n(row.p99Pooled, 1)}) ms`;
}

export function render(results: Results): string {
  const lines: string[] = [START, '', '## Scale-out: workers on one port (`npm run bench:scale`)', ''];
  lines.push(
    `Written by \`npm run bench:scale\` (bench/scale.ts) on ${results.date.slice(0, 10)}, in ${Math.round(results.seconds)} s; rerun it rather than editing this section. ` +
      `Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, shared with other work while it ran ` +
      `(load average ${results.loadBefore.map((v: number) => v.toFixed(1)).join(' / ')} before, ${results.loadAfter.map((v: number) => v.toFixed(1)).join(' / ')} after, 1/5/15 min, on 2 cores). ` +
      'Everything on loopback; the load generators are separate processes (at most 17,000 connections each, each from its own 127.0.0.x source address) and speak WebSocket themselves, at little CPU per message (each reads all its sockets into one reused buffer, with no allocation or stream event per read: they stand in for clients that would be on other machines); the workers and the load generators share the same 2 cores, so every figure below is a lower bound of what the server alone could do.',
    '',
  );
  for (const run of results.runs) {
    if (run.transport === 'ipc' && run.connections < results.settings.connections) {
      lines.push(
        `The ipc run asked for ${n(results.settings.connections)} connections; ${n(run.connections)} opened within the opening budget (SCALE_OPEN_BUDGET) at the rate this machine allowed, and the run went on with those.`,
        '',
      );
    }
  }
  lines.push('### Connections, memory, drain', '');
  lines.push('| transport | workers | connections | time to open | open rate | server CPU / connection opened (workers + primary) | RSS per worker | RSS / connection (per worker) | JS heap / connection | drain on SIGTERM | close codes |');
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const run of results.runs) {
    const rss = run.perWorker.map((w: any) => w.rssBytesPerConnection);
    const heap = run.perWorker.map((w: any) => w.heapBytesPerConnection);
    const perWorker = run.perWorker.map((w: any) => `${n(w.connections)} conns, ${n(w.rssMiB)} MiB`).join('; ');
    lines.push(
      `| ${run.transport} | ${run.workers} | **${n(run.connections)}** | ${n(run.openSeconds, 1)} s | ${n(run.openRate)}/s | ${n(run.handshakeCpu.workersMicros)} + ${n(run.handshakeCpu.primaryMicros)} µs | ${perWorker} | ${n(Math.min(...rss))}-${n(Math.max(...rss))} B | ${n(Math.min(...heap))}-${n(Math.max(...heap))} B | ${n(run.drain.seconds, 1)} s | ${Object.entries(run.drain.closeCodes).map(([c, k]) => `${c}: ${n(k as number)}`).join(', ')} |`,
    );
  }
  if (results.rawWs) {
    lines.push('', `Single-process raw \`ws\` in the same run: ${n(results.rawWs.rssBytesPerConnection)} B RSS per idle connection (${n(results.settings.scalingMembers)} connections), opened at ${n(results.rawWs.openRate)}/s.`);
  }
  lines.push('', '### User deliveries across workers, at a steady rate, with every connection idle', '');
  lines.push(
    'A worker delivers `{ user }` messages to users picked at random among those with no session on it ("remote": every message crosses to another worker through the transport) or among its own ("local"), spread evenly over the workers in 5 ms ticks. The "N workers, LocalTransport" row is the like-for-like baseline: the same number of workers and connections and the same drive, each worker on LocalTransport (no cluster: nothing is published), delivering to its own users. Latency is from the `deliver()` call to the client reading the frame (one monotonic clock for all processes). Server CPU is that of the primary and every worker together, divided by the deliveries; wake-ups are the times their event loops went to sleep and were woken again (voluntary context switches of their main threads).',
    '',
  );
  lines.push(
    `At ${n(results.settings.rates[0])}/s each row is ${n(results.settings.rounds)} windows of ${n(results.settings.seconds)} s in a row: p50, p99 and p99.9 are the medians of the windows' own (one window's p99 on 2 shared cores is a few scheduling accidents), with each window's p99 and the p99 of all their samples pooled beside them; the other rates are one window.`,
    '',
  );
  lines.push('| transport | target | rate asked | sent | received | p50 | p99 | p99 by window (pooled) | p99.9 | max | server CPU / delivery | event-loop wake-ups / delivery |');
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  const baseline = results.scaling.find((row: any) => row.local)?.local;
  const localWorkers = results.localWorkers ?? null;
  for (const run of [...results.runs, ...(localWorkers ? [{ rates: [localWorkers] }] : []), ...(baseline ? [{ rates: [baseline] }] : [])]) {
    for (const row of run.rates) {
      lines.push(
        `| ${row.transport} | ${row.where} | ${n(row.rate)}/s | ${n(row.sent)} | ${n(row.received)} | ${n(row.p50, 2)} ms | ${n(row.p99, 2)} ms | ${byWindow(row)} | ${n(row.p999, 2)} ms | ${n(row.max, 1)} ms | ${n(row.cpuMicrosPerDelivery, 1)} µs | ${n(row.wakesPerDelivery, 2)} |`,
      );
    }
  }
  for (const run of results.runs) {
    const local = run.rates.find((r: any) => r.where === 'local');
    const remote = run.rates.find((r: any) => r.where === 'remote' && r.rate === local?.rate);
    if (local && remote) {
      lines.push(
        '',
        `Over ${run.transport}, a cross-worker delivery costs ${n(remote.cpuMicrosPerDelivery / local.cpuMicrosPerDelivery, 1)}x the server CPU of a delivery to a user on the same worker at ${n(local.rate)}/s` +
          (localWorkers ? `, ${n(remote.cpuMicrosPerDelivery / localWorkers.cpuMicrosPerDelivery, 1)}x that of the same ${n(results.settings.workers)} workers each on LocalTransport` : '') +
          (baseline ? `, ${n(remote.cpuMicrosPerDelivery / baseline.cpuMicrosPerDelivery, 1)}x that of a single node on LocalTransport` : '') +
          ' (goal: within 3x of a local one). In a cluster every delivery is published once, wherever its recipients are: the "local" row includes that publish.' +
          (localWorkers
            ? ` The goal is judged against the "${localWorkers.transport}" row: the same processes, connections, drive and rate, differing only in that the message crosses a process; the single node drives from one process, not ${n(results.settings.workers)}, and pays no wake-ups of other processes.`
            : ''),
      );
    }
  }
  lines.push('', '### Channel fan-out', '');
  lines.push('| setup | members | broadcasts | deliveries/s |');
  lines.push('| --- | --- | --- | --- |');
  const bars: [string, number][] = [];
  for (const run of results.runs) {
    lines.push(`| ${run.workers} workers, ${run.transport}, members on every worker | ${n(run.fanout.members)} | ${run.fanout.broadcasts} | ${n(run.fanout.rate)} |`);
    bars.push([`${run.workers} workers (${run.transport})`, run.fanout.rate]);
  }
  for (const row of results.scaling) {
    lines.push(`| ${row.workers} worker(s), ${row.transport} | ${n(row.members)} | ${row.broadcasts} | ${n(row.rate)} |`);
    bars.push([`${row.workers} worker(s) (${row.transport})`, row.rate]);
  }
  if (results.rawWs) {
    lines.push(`| raw ws, 1 process | ${n(results.rawWs.members)} | ${results.rawWs.broadcasts} | ${n(results.rawWs.rate)} |`);
    bars.push(['raw ws, 1 process', results.rawWs.rate]);
  }
  const max = Math.max(...bars.map(([, v]) => v));
  const width = Math.max(...bars.map(([label]) => label.length));
  lines.push('', '```text', 'fan-out deliveries/s', ...bars.map(([label, v]) => `${label.padEnd(width)} ${bar(v, max)} ${n(v)}`), '```');
  if (results.storm) {
    lines.push('', '### Reconnect storm', '');
    {
      const s = results.storm;
      const others = s.otherWorkersDropped ?? s.dropped - s.killedConnections;
      lines.push(
        `A cluster of its own (opened at ${n(s.openRate)}/s under the limit). One of ${n(s.workers)} workers, holding ${n(s.killedConnections)} connections, was killed (SIGKILL) with \`maxHandshakesPerSecond: ${n(s.maxHandshakesPerSecond)}\` on every worker; its clients reconnected at once (after a refusal: Retry-After plus up to 1 s of jitter). ` +
          `${n(s.stillOpen)} of ${n(s.expected ?? s.stillOpen)} connections were open again ${n(s.seconds, 1)} s after the kill; ${n(s.refused)} handshakes were refused with 503 on the way (${n(s.attempts)} retries in all). ` +
          `Connections dropped: ${n(s.dropped)}, the killed worker's ${n(s.killedConnections)} ${others === 0 ? '(none of the other workers)' : `and ${n(others)} of the other workers`}.` +
          (s.peakCpuShare !== undefined ? ` CPU of the busiest worker during the storm: ${n(s.busiestMeanCpuShare * 100)}% of a core on average, ${n(s.peakCpuShare * 100)}% in its busiest half second.` : ''),
      );
      if (s.deliveries && s.initWait) {
        const d = s.deliveries;
        const w = s.initWait;
        lines.push(
          '',
          `During the storm, for ${n(d.seconds)} s from the kill, the surviving workers delivered to one another's users (connected throughout) at ${n(d.rate)}/s: ` +
            `${n(d.sent)} sent, ${n(d.lost)} lost, latency p50 ${n(d.p50, 1)} ms, p99 ${n(d.p99, 1)} ms, max ${n(d.max, 1)} ms. ` +
            `The ${n(w.sessions)} sessions opened after the kill waited p50 ${n(w.p50)} ms, p99 ${n(w.p99)} ms, max ${n(w.max)} ms from \`@OnAuthenticate\` to \`@OnInit\` (the hub confirming their subscription, mostly).`,
        );
      }
    }
  }
  lines.push('', END);
  return lines.join('\n');
}

export function renderScaleSection(current: string, results: Results): string {
  const section = render(results);
  const start = current.indexOf(START);
  const end = current.indexOf(END);
  if (start !== -1 && end !== -1) return current.slice(0, start) + section + current.slice(end + END.length);
  return `${current.trimEnd()}\n\n${section}\n`;
}
