import { afterEach, describe, expect, it } from 'vitest';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { NatsTransport, RedisTransport } from 'nestjs-riverside';
import { TestClient } from 'nestjs-riverside/testing';
import { uniquePrefix } from '../support/brokers.js';
import { natsServerAvailable, OwnNatsServer } from '../support/nats.js';
import { type ClusterNodeProcess, startClusterNode, startNodeProcess } from '../support/node-process.js';
import { OwnRedisServer, rawRedis, redisServerAvailable } from '../support/redis.js';

// Point 3 of issue 7: a node with 200,000 topics survives a restart of its broker (no crash: the
// resubscription goes in chunks), gets every topic back, and deliveries flow again. Both nodes are
// separate processes on a broker of the test's own, killed with SIGKILL and started again.
const TOPICS = 200_000;
const TRANSPORT_NODE = fileURLToPath(new URL('./fixtures/transport-node.mjs', import.meta.url));

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

    let stopNode: (() => Promise<unknown>) | undefined;
    let closeSender: (() => Promise<unknown>) | undefined;
    afterEach(async () => {
      await closeSender?.();
      await stopNode?.();
      closeSender = stopNode = undefined;
      for (const client of clients.splice(0)) client.ws.terminate();
      await Promise.all(nodes.map((node) => node.stop()));
      nodes = [];
      await server?.kill();
    });

    it('does not crash, restores every topic, and delivers again', async () => {
      server = await broker.start();
      const prefix = uniquePrefix('restart');
      // The node's broker side alone: with 200,000 sessions' worth of channel memberships, cluster
      // presence would replicate them all too, which is its own cost (and not this test's).
      const node = await startNodeProcess(
        TRANSPORT_NODE,
        { RIVERSIDE_TRANSPORT: broker.transport, [broker.envKey]: server.url, RIVERSIDE_PREFIX: prefix, TOPICS: String(TOPICS) },
        120_000,
      );
      stopNode = () => node.stop();
      const got = new Set<string>();
      createInterface({ input: node.child.stdout! }).on('line', (line) => {
        if (!line.startsWith('{')) return; // Nest's log lines
        const { got: topic } = JSON.parse(line) as { got?: string };
        if (topic) got.add(topic);
      });
      const sender = broker.transport === 'redis' ? new RedisTransport({ url: server.url, prefix }) : new NatsTransport({ servers: server.url, prefix });
      closeSender = () => sender.close();
      await sender.connect();
      const sample = ['channel:c0', 'channel:c123456', `channel:c${TOPICS - 1}`];
      /** Publishes to the sample topics until the node has received each, or `ms` pass. */
      async function deliveredWithin(ms: number): Promise<boolean> {
        got.clear();
        const deadline = Date.now() + ms;
        while (Date.now() < deadline) {
          for (const topic of sample) await sender.publish(topic, Buffer.from('x')).catch(() => undefined);
          await new Promise((resolve) => setTimeout(resolve, 200));
          if (sample.every((topic) => got.has(topic))) return true;
        }
        return false;
      }
      expect(await deliveredWithin(20_000)).toBe(true);
      expect(await server.channelTopics(prefix)).toBeOneOf([TOPICS, null]);

      await server.kill();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await server.restart();
      const back = Date.now();
      expect(await deliveredWithin(60_000)).toBe(true);
      const recoveredMs = Date.now() - back;
      expect(node.child.exitCode).toBeNull();
      expect(node.stderr()).not.toMatch(/RangeError|Maximum call stack/);
      await expect.poll(() => server!.channelTopics(prefix), { timeout: 30_000, interval: 500 }).toBeOneOf([TOPICS, null]);
      console.log(`${broker.name}: ${TOPICS} topics, the sample received again ${recoveredMs} ms after the broker was back`);
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
