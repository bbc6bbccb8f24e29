import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { childOutput } from '../support/bench-files.js';
import { NATS_URL, natsAvailable } from '../support/nats.js';
import { REDIS_URL, redisAvailable } from '../support/redis.js';

// A few seconds of `npm run soak` (bench/soak/run.mjs) per broker: three node processes, mixed
// user / session / channel deliveries with sequence numbers, sessions coming and going and
// joining and leaving channels: nothing lost, duplicated or reordered while the broker is up.
const SOAK = fileURLToPath(new URL('../../bench/soak/run.mjs', import.meta.url));
const brokers = [
  { name: 'Redis', transport: 'redis', up: await redisAvailable() },
  { name: 'NATS', transport: 'nats', up: await natsAvailable() },
] as const;

for (const broker of brokers) {
  describe.runIf(broker.up)(`the soak, briefly, on ${broker.name}`, () => {
    it('loses, duplicates and reorders nothing across three node processes with session churn', async () => {
      const { stdout } = await promisify(execFile)(process.execPath, [SOAK], {
        env: { ...process.env, SOAK_TRANSPORT: broker.transport, SOAK_SECONDS: '6', REDIS_URL, NATS_URL },
        timeout: 60_000,
      }).catch((error: unknown) => {
        throw new Error(`npm run soak (${broker.transport}) failed: ${childOutput(error)}`);
      });
      const figures = JSON.parse(stdout.trim().split('\n').pop() as string);
      expect(figures.owed).toBeGreaterThan(1000);
      expect(figures.sessions).toBeGreaterThan(24);
      expect({ lost: figures.lost, duplicated: figures.duplicated, reordered: figures.reordered }).toEqual({
        lost: 0,
        duplicated: 0,
        reordered: 0,
      });
    }, 90_000);
  });
}
