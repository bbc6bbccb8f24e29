import { afterAll, describe, expect, it } from 'vitest';
import { uniquePrefix } from '../support/brokers.js';
import { type ClusterNodeProcess, startClusterNode } from '../support/node-process.js';
import { REDIS_URL, rawRedis, redisAvailable } from '../support/redis.js';

// The nodes' presence heartbeats leave in step, on the wall clock's grid of presenceHeartbeat
// (default 1000 ms), whenever each node started: a node hears the others' heartbeats in a few
// wake-ups a period instead of one each (bench/tail/idle-nodes.mjs measures what that saves).
// Separate Riverside processes (the built package) on a real Redis.

// STYLE 18: skipped (loudly) only outside CI when a broker is unreachable; under CI this throws.
const redisUp = await redisAvailable();

const HEARTBEAT = 1000;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

describe.runIf(redisUp)('presence heartbeats of Riverside processes on redis', () => {
  const nodes: ClusterNodeProcess[] = [];
  const observer = rawRedis();
  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    observer.disconnect();
  });

  it('leave every node on the same grid of presenceHeartbeat ms, whenever the node started', async () => {
    const prefix = uniquePrefix('presence-heartbeats');
    await observer.connect();
    /** When (wall clock, ms) each node's heartbeats arrived. */
    const arrivals = new Map<string, number[]>();
    observer.on('message', (_channel: string, text: string) => {
      const message = JSON.parse(text) as { t: string; n: string };
      if (message.t === 'hb') arrivals.set(message.n, [...(arrivals.get(message.n) ?? []), Date.now()]);
    });
    await observer.subscribe(`${prefix}:presence:cluster`);
    // Started a third of a period apart, so that heartbeats timed from each start would not be in step.
    for (let n = 0; n < 3; n++) {
      nodes.push(await startClusterNode('redis', { REDIS_URL, RIVERSIDE_PREFIX: prefix }, 20_000));
      await new Promise((resolve) => setTimeout(resolve, HEARTBEAT / 3));
    }
    await new Promise((resolve) => setTimeout(resolve, 3.5 * HEARTBEAT));

    expect(arrivals.size).toBe(3);
    for (const times of arrivals.values()) {
      expect(times.length).toBeGreaterThanOrEqual(3);
      // Where in the period each heartbeat arrived: just after the grid's instant (a timer is
      // never early; a loaded machine may make it late, hence the median and the margin).
      expect(median(times.map((time) => time % HEARTBEAT))).toBeLessThan(HEARTBEAT / 4);
    }
  }, 40_000);
});
