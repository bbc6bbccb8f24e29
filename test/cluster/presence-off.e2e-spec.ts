import { connect as connectNats } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import type { PresenceMember } from 'nestjs-riverside';
import { TestClient } from 'nestjs-riverside/testing';
import { uniquePrefix } from '../support/brokers.js';
import { NATS_URL, natsAvailable } from '../support/nats.js';
import { type ClusterNodeProcess, startClusterNode } from '../support/node-process.js';
import { REDIS_URL, rawRedis, redisAvailable } from '../support/redis.js';
import { eventually } from '../support/riverside-app.js';

// The module option `presence: false`, on two Riverside processes (the built package) on a real
// Redis and a real NATS server: no node replicates the others' sessions, so nothing is said on
// the presence topic, and PresenceService refuses what it could not answer for the cluster.

// STYLE 18: skipped (loudly) only outside CI when a broker is unreachable; under CI this throws.
const [redisUp, natsUp] = await Promise.all([redisAvailable(), natsAvailable()]);

/** A raw subscriber on the nodes' presence topic: what they publish there, as text. */
interface PresenceTopicObserver {
  readonly messages: string[];
  close(): Promise<void>;
}

async function observeRedis(prefix: string): Promise<PresenceTopicObserver> {
  const redis = rawRedis();
  await redis.connect();
  const messages: string[] = [];
  redis.on('message', (_channel: string, message: string) => messages.push(message));
  await redis.subscribe(`${prefix}:presence:cluster`);
  return { messages, close: async () => redis.disconnect() };
}

async function observeNats(prefix: string): Promise<PresenceTopicObserver> {
  const nats = await connectNats({ servers: NATS_URL, timeout: 2000, reconnect: false });
  const messages: string[] = [];
  nats.subscribe(`${prefix}.presence.cluster`, { callback: (_error, message) => void messages.push(message.string()) });
  await nats.flush();
  return { messages, close: () => nats.close() };
}

function presenceOffSuite(broker: 'redis' | 'nats', up: boolean, brokerEnv: Record<string, string>, observe: (prefix: string) => Promise<PresenceTopicObserver>): void {
  describe.runIf(up)(`presence: false, two Riverside processes on ${broker}`, () => {
    const nodes: ClusterNodeProcess[] = [];
    const clients: TestClient[] = [];
    let observer: PresenceTopicObserver | null = null;
    afterEach(async () => {
      for (const client of clients.splice(0)) client.ws.terminate();
      await Promise.all(nodes.splice(0).map((node) => node.stop()));
      await observer?.close();
      observer = null;
    });

    /** Two nodes on a prefix of their own, `env` added, and the observer of their presence topic. */
    async function startCluster(env: Record<string, string>): Promise<[ClusterNodeProcess, ClusterNodeProcess]> {
      const prefix = uniquePrefix(`presence-off-${broker}`);
      observer = await observe(prefix);
      for (let n = 0; n < 2; n++) nodes.push(await startClusterNode(broker, { ...brokerEnv, RIVERSIDE_PREFIX: prefix, ...env }, 20_000));
      return [nodes[0], nodes[1]];
    }

    async function connect(node: ClusterNodeProcess, userId: string): Promise<TestClient> {
      const client = await TestClient.connect(`${node.url}?user=${userId}`, { timeout: 5000 });
      clients.push(client);
      return client;
    }

    async function ask<T>(client: TestClient, question: Record<string, unknown>): Promise<T> {
      client.send(question);
      return (await client.expectMessage()) as T;
    }

    /** Sessions on both nodes join a channel, a delivery crosses from the first node to the second, and they close. */
    async function openJoinDeliverClose([first, second]: ClusterNodeProcess[]): Promise<void> {
      const ann = await connect(first, 'ann');
      const bob = await connect(second, 'bob');
      for (const client of [ann, bob]) expect(await ask(client, { join: 'room' })).toEqual({ joined: 'room' });
      await eventually(() => expect(second.subscribed).toContain('user:bob'));
      expect(await ask(ann, { deliver: { user: 'bob' }, message: { hi: 'bob' } })).toEqual({ delivered: 0 });
      expect(await bob.expectMessage()).toEqual({ hi: 'bob' });
      await ann.close();
      await bob.close();
    }

    it('says nothing on the presence topic (no hello, heartbeat or change) while deliveries still cross processes', async () => {
      const cluster = await startCluster({ RIVERSIDE_PRESENCE: 'off' });
      await openJoinDeliverClose(cluster);
      // A node with presence on says hello at once and heartbeats every second.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(observer!.messages).toEqual([]);
      // Neither the shared presence topic nor a node's own (`presence:<node>`).
      for (const node of cluster) expect([...node.subscribed].filter((topic) => topic.startsWith('presence:'))).toEqual([]);
    });

    it('with presence on (the default), the same steps are told on the presence topic', async () => {
      await openJoinDeliverClose(await startCluster({ PRESENCE_HEARTBEAT: '100' }));
      await eventually(() => {
        const kinds = new Set(observer!.messages.map((message) => (JSON.parse(message) as { t: string }).t));
        expect([...kinds]).toEqual(expect.arrayContaining(['hello', 'hb', 'delta']));
      });
    });

    it("refuses the cluster-wide questions and on() with a PresenceDisabledError; localMembers() answers for the node", async () => {
      const [first] = await startCluster({ RIVERSIDE_PRESENCE: 'off' });
      const ready = first.output.find((line) => typeof line.url === 'string')!;
      expect(ready.presenceListener).toBe('RIVERSIDE_ERR_PRESENCE_DISABLED');
      const ann = await connect(first, 'ann');
      expect(await ask(ann, { join: 'room' })).toEqual({ joined: 'room' });

      const refusal = (method: string) => ({
        refused: {
          name: 'PresenceDisabledError',
          code: 'RIVERSIDE_ERR_PRESENCE_DISABLED',
          message:
            `PresenceService.${method}() needs cluster presence, which is off (RiversideModule option presence: false). ` +
            "Remove that option to turn it on, or use localMembers()/localCount() for this node's sessions.",
        },
      });
      expect(await ask(ann, { members: 'room' })).toEqual(refusal('members'));
      expect(await ask(ann, { isOnline: 'ann' })).toEqual(refusal('isOnline'));
      expect(await ask(ann, { sessionsOf: 'ann' })).toEqual(refusal('sessionsOf'));
      const { localMembers } = await ask<{ localMembers: PresenceMember[] }>(ann, { localMembers: 'room' });
      expect(localMembers).toEqual([{ userId: 'ann', sessionId: expect.any(String), node: ready.node }]);
    });
  });
}

presenceOffSuite('redis', redisUp, { REDIS_URL }, observeRedis);
presenceOffSuite('nats', natsUp, { NATS_URL }, observeNats);
