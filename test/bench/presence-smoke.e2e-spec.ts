import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { benchFiles, childOutput, ROOT } from '../support/bench-files.js';
import { NATS_URL, natsAvailable } from '../support/nats.js';
import { REDIS_URL, redisAvailable } from '../support/redis.js';

// `npm run bench:presence` (bench/presence/run.mjs) at PRESENCE_SMOKE's scale, on each broker,
// into a directory of its own. Figures are not asserted (the machine is shared). What its user
// relies on: it exits 0, which it only does once all 3 nodes listed every member of the big
// channel and converged on exactly the members the clients hold after the churn; every join and
// leave went over the broker; the report has every row of its table; bench/ is left alone.
const brokers = [
  { name: 'Redis', broker: 'redis', up: await redisAvailable() },
  { name: 'NATS', broker: 'nats', up: await natsAvailable() },
] as const;
/** PRESENCE_SMOKE's channel size (bench/presence/run.mjs). */
const MEMBERS = 300;

/** The rows of the report's `| measure | result |` table, by measure. */
function tableRows(report: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const match of report.matchAll(/^\| (.+?) \| (.+?) \|$/gm)) {
    if (match[1] !== 'measure' && match[1] !== '---') rows.set(match[1], match[2]);
  }
  return rows;
}

/** The result of the row whose measure starts with `start`. */
function row(rows: Map<string, string>, start: string): string {
  const found = [...rows].find(([measure]) => measure.startsWith(start));
  if (!found) throw new Error(`the report has no row "${start}...": ${[...rows.keys()].join('; ')}`);
  return found[1];
}

const number = (text: string, pattern: RegExp) => Number(pattern.exec(text)?.[1]);

for (const { name, broker, up } of brokers) {
  describe.runIf(up)(`npm run bench:presence (smoke) on ${name}`, () => {
    const out = mkdtempSync(join(tmpdir(), 'presence-smoke-'));
    afterAll(() => rmSync(out, { recursive: true, force: true }));

    it('runs every step over 3 nodes, the nodes agree, and the report has every row', async () => {
      const before = benchFiles();
      await promisify(execFile)(process.execPath, ['--expose-gc', 'bench/presence/run.mjs'], {
        cwd: ROOT,
        env: { ...process.env, PRESENCE_SMOKE: '1', PRESENCE_OUT: out, BROKER: broker, REDIS_URL, NATS_URL },
        timeout: 80_000,
      }).catch((error: unknown) => {
        throw new Error(`npm run bench:presence (PRESENCE_SMOKE=1, ${name}) failed: ${childOutput(error)}`);
      });

      const report = readFileSync(join(out, 'RESULTS.md'), 'utf8');
      expect(report).toContain('Smoke run (PRESENCE_SMOKE=1)');
      expect(report).toContain(`broker: ${broker}`);
      const rows = tableRows(report);
      expect(rows.size).toBe(11);
      expect(row(rows, `members() of a ${MEMBERS}-member channel`)).toMatch(/^median [\d.]+ ms, max [\d.]+ ms$/);
      expect(row(rows, 'the same, as a client sees it')).toMatch(/^median [\d.]+ ms$/);
      expect(row(rows, `${MEMBERS} clients connected and joined`)).toMatch(/all 3 nodes listed all of them/);
      // Every join and every leave went over the broker (one at a time, none shares a delta).
      expect(number(row(rows, 'broker messages per join, one at a time'), /^([\d.]+) delta/)).toBeGreaterThanOrEqual(1);
      expect(number(row(rows, 'broker messages per leave, one at a time'), /^([\d.]+) delta/)).toBeGreaterThanOrEqual(1);
      expect(number(row(rows, 'churn'), /^(\d+) joins\/leaves/)).toBeGreaterThan(0);
      expect(number(row(rows, 'convergence after the churn stops'), /^(\d+) ms$/)).toBeGreaterThanOrEqual(0);
      expect(row(rows, "a node's start")).toMatch(/^its members\(\) complete [\d.]+ s after it was spawned; \d+ state messages on its own topic \([\d,]+ KiB\), \d+ on the shared topic \([\d,]+ KiB\); [\d,]+ KiB delivered to nodes$/);
      expect(number(row(rows, 'replica memory per remote member'), /^(\d+) bytes$/)).toBeGreaterThan(0);

      expect(benchFiles()).toEqual(before);
    }, 90_000);
  });
}
