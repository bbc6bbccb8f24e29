import { connect as natsConnect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { NatsTransport, RedisTransport, RiversideStats } from 'nestjs-riverside';
import { encodeWireMessage } from '../../src/cluster/wire-message.js';
import { ClusterNodeHandler } from '../cluster/cluster-delivery.contract.js';
import { uniquePrefix } from '../support/brokers.js';
import { NATS_URL, natsAvailable } from '../support/nats.js';
import { REDIS_URL, redisAvailable } from '../support/redis.js';
import { eventually, type RunningApp, startRiverside } from '../support/riverside-app.js';
import { asNextMajor, versionOne, withNextMinor } from '../support/wire.js';

// Point 5 of issue 7: during a rolling upgrade a node reads what nodes of the previous release
// (wire version 1) and of the next minor release (2.1, with fields it does not know) publish,
// and rejects a next major version, counted, without touching the session.
const brokers = [
  {
    name: 'Redis',
    up: await redisAvailable(),
    transport: (prefix: string) => new RedisTransport({ url: REDIS_URL, prefix }),
    async publisher(prefix: string) {
      const redis = new Redis(REDIS_URL);
      return {
        publish: async (topic: string, payload: Buffer) => void (await redis.publish(`${prefix}:${topic}`, payload)),
        close: async () => void redis.disconnect(),
      };
    },
  },
  {
    name: 'NATS',
    up: await natsAvailable(),
    transport: (prefix: string) => new NatsTransport({ servers: NATS_URL, prefix }),
    async publisher(prefix: string) {
      const nats = await natsConnect({ servers: NATS_URL });
      return {
        publish: async (topic: string, payload: Buffer) => {
          nats.publish(`${prefix}.${topic.replace(':', '.')}`, payload);
          await nats.flush();
        },
        close: () => nats.close(),
      };
    },
  },
];

for (const broker of brokers) {
  describe.runIf(broker.up)(`a node during a rolling upgrade, on ${broker.name}`, () => {
    let node: RunningApp | undefined;
    let closePublisher: (() => Promise<void>) | undefined;
    afterEach(async () => {
      await node?.close();
      await closePublisher?.();
    });

    it('reads version 1 and version 2.1 messages as documented, and rejects version 3 without touching the session', async () => {
      const prefix = uniquePrefix('upgrade');
      node = await startRiverside({ transport: broker.transport(prefix) }, [ClusterNodeHandler]);
      const publisher = await broker.publisher(prefix);
      closePublisher = publisher.close;
      const client = await node.connect('/', { query: { user: 'up', sid: 's1' } });
      const sibling = await node.connect('/', { query: { user: 'up', sid: 's2' } });
      // Subscribed once a delivery from "another node" arrives.
      const probe = encodeWireMessage({ origin: 'next-node', session: null, kind: 'deliver', message: { probe: true } });
      await eventually(async () => {
        await publisher.publish('user:up', probe);
        expect(await client.expectMessage(200)).toEqual({ probe: true });
      });
      while (await client.expectMessage(300).catch(() => null)) {
        // Drain the extra probes.
      }
      while (await sibling.expectMessage(50).catch(() => null)) {
        // Same.
      }

      // 2.1: an optional header field and a flag 2.0 does not know; a delivery to session s1 only, as data.
      await publisher.publish(
        'user:up',
        withNextMinor(encodeWireMessage({ origin: 'next-node', session: 's1', kind: 'deliver', message: { from: '2.1' } })),
      );
      expect(await client.expectMessage()).toEqual({ from: '2.1' });
      // 1: a delivery is a frame already encoded by the old node; an info is JSON.
      await publisher.publish('user:up', versionOne('deliver', Buffer.from('{"from":"1"}')));
      expect(await client.expectMessage()).toEqual({ from: '1' });
      expect(await sibling.expectMessage()).toEqual({ from: '1' });
      await publisher.publish('user:up', versionOne('info', Buffer.from('{"refresh":1}')));
      expect(await client.expectMessage()).toEqual({ info: { refresh: 1 } });
      expect(await sibling.expectMessage()).toEqual({ info: { refresh: 1 } });

      // 3.0: rejected and counted; nothing reaches the sessions.
      const stats = node.app.get(RiversideStats);
      await publisher.publish('user:up', asNextMajor(encodeWireMessage({ origin: 'far', session: null, kind: 'close', code: 4000, reason: 'x' })));
      await eventually(() => expect(stats.rejectedClusterMessages).toBe(1));
      await client.expectNoMessage(100);
      await sibling.expectNoMessage(0);
      client.send({ join: 'still-open' });
      expect(await client.expectMessage()).toEqual({ joined: 'still-open' });
    });
  });
}
