import { afterEach, describe, expect, it } from 'vitest';
import { TestClient } from 'nestjs-riverside/testing';
import { uniquePrefix } from '../support/brokers.js';
import { natsServerAvailable, OwnNatsServer } from '../support/nats.js';
import { type ClusterNodeProcess, startClusterNode } from '../support/node-process.js';
import { OwnRedisServer, rawRedis, redisServerAvailable } from '../support/redis.js';

// Point 3 of issue 7: a node with 200,000 topics survives a restart of its broker (no crash: the
// resubscription goes in chunks), gets every topic back, and deliveries flow again. Both nodes are
// separate processes on a broker of the test's own, killed with SIGKILL and started again.
const TOPICS = 200_000;

interface OwnBroker {
  readonly url: string;
  kill(): Promise<void>;
  restart(): Promise<void>;
  /** How many channel topics under `prefix` the broker has subscribed, or null when it cannot say. */
  channelTopics(prefix: string): Promise<number | null>;
}

async function ownRedis(): Promise<OwnBroker> {
  const server = await OwnRedisServer.start();
  return {
    url: server.url,
    kill: () => server.stop(),
    restart: () => server.start(),
    async channelTopics(prefix) {
      const redis = rawRedis(server.url);
      try {
        await redis.connect();
        return ((await redis.call('PUBSUB', 'CHANNELS', `${prefix}:channel:*`)) as string[]).length;
      } catch {
        return null;
      } finally {
        redis.disconnect();
      }
    },
  };
}

async function ownNats(): Promise<OwnBroker> {
  const server = await OwnNatsServer.start();
  return {
    url: server.url,
    kill: () => server.kill(),
    restart: () => server.restart(),
    // NATS has no PUBSUB NUMSUB; the deliveries to a sample of channels below show the interest.
    channelTopics: async () => null,
  };
}

const brokers = [
  { name: 'Redis', transport: 'redis', envKey: 'REDIS_URL', up: await redisServerAvailable(), start: ownRedis },
  { name: 'NATS', transport: 'nats', envKey: 'NATS_URL', up: await natsServerAvailable(), start: ownNats },
] as const;

for (const broker of brokers) {
  describe.runIf(broker.up)(`a node with ${TOPICS.toLocaleString('en')} topics when its ${broker.name} restarts`, () => {
    const clients: TestClient[] = [];
    let nodes: ClusterNodeProcess[] = [];
    let server: OwnBroker | undefined;

    afterEach(async () => {
      for (const client of clients.splice(0)) client.ws.terminate();
      await Promise.all(nodes.map((node) => node.stop()));
      nodes = [];
      await server?.kill();
    });

    it('does not crash, restores every topic, and delivers again', async () => {
      server = await broker.start();
      const prefix = uniquePrefix('restart');
      const env = { [broker.envKey]: server.url, RIVERSIDE_PREFIX: prefix, RIVERSIDE_REPORT_SUBSCRIBED: '0', RIVERSIDE_MAX_CHANNELS_PER_SESSION: String(TOPICS) };
      const [big, sender] = (nodes = await Promise.all([startClusterNode(broker.transport, env, 30_000), startClusterNode(broker.transport, env, 30_000)]));
      const member = await TestClient.connect(`${big.url}?user=member`, { timeout: 30_000 });
      const trigger = await TestClient.connect(`${sender.url}?user=trigger`);
      clients.push(member, trigger);
      member.send({ joinMany: TOPICS, prefix: 'c' });
      expect(await member.expectMessage(90_000)).toEqual({ joinedMany: TOPICS });

      const sample = ['c0', 'c123456', `c${TOPICS - 1}`];
      /** Broadcasts to the sample channels from the other node until the member has them all, or `ms` pass. */
      async function deliveredWithin(ms: number): Promise<boolean> {
        const deadline = Date.now() + ms;
        let round = 0;
        while (Date.now() < deadline) {
          round++;
          for (const channel of sample) trigger.send({ deliver: { channel }, message: { channel, round } });
          const seen = new Set<string>();
          const until = Date.now() + 300;
          while (Date.now() < until && seen.size < sample.length) {
            try {
              const message = (await member.expectMessage(Math.max(1, until - Date.now()))) as { channel: string; round: number };
              if (message.round === round) seen.add(message.channel);
            } catch {
              break;
            }
          }
          await trigger.expectMessages(sample.length, 1000).catch(() => undefined);
          if (seen.size === sample.length) return true;
        }
        return false;
      }
      // The answer came once the subscriptions were confirmed or after the 2 s bound: on a busy
      // machine 200,000 NATS subscriptions take longer than that.
      expect(await deliveredWithin(90_000)).toBe(true);
      expect(await server.channelTopics(prefix)).toBeOneOf([TOPICS, null]);

      await server.kill();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await server.restart();
      const back = Date.now();
      expect(await deliveredWithin(30_000)).toBe(true);
      const recoveredMs = Date.now() - back;
      expect(big.child.exitCode).toBeNull();
      expect(big.stderr()).not.toMatch(/RangeError|Maximum call stack/);
      await expect.poll(() => server!.channelTopics(prefix), { timeout: 20_000, interval: 500 }).toBeOneOf([TOPICS, null]);
      console.log(`${broker.name}: ${TOPICS} topics, deliveries to the sample flowed again ${recoveredMs} ms after the broker was back`);
    }, 300_000);

    it('is back within about a second of the broker returning (default reconnect backoff), after a 5 s outage', async () => {
      server = await broker.start();
      const prefix = uniquePrefix('backoff');
      const env = { [broker.envKey]: server.url, RIVERSIDE_PREFIX: prefix };
      const [receiver, sender] = (nodes = await Promise.all([startClusterNode(broker.transport, env, 30_000), startClusterNode(broker.transport, env, 30_000)]));
      const member = await TestClient.connect(`${receiver.url}?user=member`);
      const trigger = await TestClient.connect(`${sender.url}?user=trigger`);
      clients.push(member, trigger);
      member.send({ join: 'room' });
      expect(await member.expectMessage()).toEqual({ joined: 'room' });
      await server.kill();
      await new Promise((resolve) => setTimeout(resolve, 5000));
      await server.restart();
      const back = Date.now();
      let recoveredMs = -1;
      let n = 0;
      while (Date.now() - back < 5000 && recoveredMs < 0) {
        trigger.send({ deliver: { channel: 'room' }, message: { n: ++n } });
        try {
          await member.expectMessage(50);
          recoveredMs = Date.now() - back;
        } catch {
          // Not yet.
        }
      }
      console.log(`${broker.name}: deliveries flowed again ${recoveredMs} ms after the broker was back (5 s outage)`);
      expect(recoveredMs).toBeGreaterThanOrEqual(0);
      expect(recoveredMs).toBeLessThan(1200);
    }, 30_000);
  });
}
