import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { RiversideStats } from 'nestjs-riverside';
import { AuthenticatedEchoHandler } from '../support/echo-handlers.js';
import { fetchRaw } from '../support/http.js';
import { type RunningApp, startRiverside } from '../support/riverside-app.js';

// Issue 6, point 2: a flood of silent TCP sockets before any upgrade neither exhausts the
// process's descriptors nor stops /health, new handshakes or established connections.
//
// The suite runs a scaled smoke (1,200 sockets against maxPendingSockets 300). The full scenario
// (20,000 sockets from 4 processes against the default cap, half the open-files limit) is
// `npm run test:silent-sockets`, which sets SILENT_SOCKETS=20000.

const TOTAL = Number(process.env.SILENT_SOCKETS ?? 1200);
const FULL = TOTAL >= 10_000;
const PROCESSES = FULL ? 4 : 2;
/** The cap under test: the default in the full run, a small one in the smoke. */
const CAP = FULL ? undefined : 300;
/** Pending sockets older than this may be evicted for a newcomer (pre-upgrade-guard.ts). */
const EVICTABLE_AFTER = 2000;
const SCRIPT = fileURLToPath(new URL('../support/silent-sockets.mjs', import.meta.url));

interface Flooder {
  child: ChildProcess;
  settled: Promise<{ connected: number; failed: number }>;
}

/** A child process holding `count` silent sockets from `from`; closing its stdin closes them. */
function flood(port: number, count: number, from: string): Flooder {
  const child = spawn(process.execPath, [SCRIPT], {
    env: { ...process.env, SILENT_PORT: String(port), SILENT_COUNT: String(count), SILENT_FROM: from },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const settled = new Promise<{ connected: number; failed: number }>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const parsed = JSON.parse(line) as { settled?: { connected: number; failed: number } };
      if (parsed.settled) resolve(parsed.settled);
    });
    child.once('exit', (code) => reject(new Error(`silent-sockets.mjs exited (${code}) before it settled`)));
  });
  return { child, settled };
}

let running: RunningApp;
const flooders: Flooder[] = [];
afterEach(async () => {
  await Promise.all(
    flooders.splice(0).map(({ child }) => {
      if (child.exitCode !== null) return undefined;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin!.end();
      return exited;
    }),
  );
  await running?.close();
});

describe(`${TOTAL} silent TCP sockets before any upgrade`, () => {
  it(
    'leave /health, a new handshake and an established connection working, and the sheds are counted',
    async () => {
      // A long handshakeTimeout, so that the cap (not the inactivity timeout) is what holds the
      // flood; no idleTimeout, so that the bystander may stay silent however long the flood takes.
      running = await startRiverside({ handshakeTimeout: 120_000, idleTimeout: 0, ...(CAP !== undefined && { maxPendingSockets: CAP }) }, [AuthenticatedEchoHandler]);
      const stats = running.app.get(RiversideStats);
      const port = running.server.address().port;
      const bystander = await running.connect('/echo');

      const started = Date.now();
      for (let i = 0; i < PROCESSES; i++) flooders.push(flood(port, TOTAL / PROCESSES, `127.0.0.${i + 2}`));
      const settled = await Promise.all(flooders.map((flooder) => flooder.settled));
      const connected = settled.reduce((sum, each) => sum + each.connected, 0);
      const floodMs = Date.now() - started;
      expect(connected + settled.reduce((sum, each) => sum + each.failed, 0)).toBe(TOTAL);
      expect(stats.shedSockets).toBeGreaterThan(0);

      // The established connection never noticed.
      bystander.send({ during: 'flood' });
      expect(await bystander.expectMessage()).toEqual({ during: 'flood' });

      // Once the silent sockets are stale, a newcomer takes the place of one of them.
      await new Promise((resolve) => setTimeout(resolve, EVICTABLE_AFTER + 100));
      const health = await fetchRaw(running.httpUrl('/health'));
      expect(health.status).toBe(200);
      expect(health.body).toBe('OK');
      const newcomer = await running.connect('/echo');
      newcomer.send({ newcomer: true });
      expect(await newcomer.expectMessage()).toEqual({ newcomer: true });
      bystander.send({ after: 'flood' });
      expect(await bystander.expectMessage()).toEqual({ after: 'flood' });

      const shedWarnings = running.logger.entries.filter((entry) => entry.level === 'warn');
      expect(shedWarnings.length).toBeLessThanOrEqual(3);
      expect(running.logger.errors()).toEqual([]);
      console.log(
        `${TOTAL} silent sockets in ${floodMs} ms: ${connected} connected, ${stats.shedSockets} shed or evicted, ` +
          `${shedWarnings.length} warning line(s)`,
      );
    },
    FULL ? 300_000 : 30_000,
  );
});
