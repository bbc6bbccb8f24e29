import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type AuthRequest,
  DeliveryService,
  OnAuthenticate,
  OnMessage,
  PresenceDisabledError,
  PresenceService,
  RedisTransport,
  type RiversideModuleOptions,
  RiversideHandler,
  type Session,
} from 'nestjs-riverside';
import { uniquePrefix } from '../support/brokers.js';
import { REDIS_URL, rawRedis, redisAvailable } from '../support/redis.js';
import { eventually, type RunningApp, startRiverside } from '../support/riverside-app.js';

// STYLE 18: skipped (loudly) only outside CI when Redis is unreachable; under CI this throws.
const redisUp = await redisAvailable();

/** `?user=<id>`; `{ join }` joins and answers `{ joined }`; `{ deliver, message }` delivers and answers `{ delivered }`. */
@RiversideHandler()
class NodeHandler {
  constructor(private readonly delivery: DeliveryService) {}

  @OnAuthenticate()
  authenticate(req: AuthRequest) {
    return { userId: String(req.queries.user) };
  }

  @OnMessage()
  onMessage(message: { join?: string; deliver?: { user: string }; message?: unknown }, session: Session) {
    if (message.join !== undefined) {
      session.join(message.join, { name: session.userId });
      return { joined: message.join };
    }
    if (message.deliver !== undefined) return { delivered: this.delivery.deliver(message.deliver, message.message) };
    return undefined;
  }
}

// The module option `presence: false`: no node replicates the others' sessions, so nothing is
// said on the presence topic, and PresenceService refuses what it could not answer for the cluster.
describe.runIf(redisUp)('presence: false on a real Redis', () => {
  let nodes: RunningApp[] = [];
  let observer: Redis | null = null;
  afterEach(async () => {
    await Promise.all(nodes.map((node) => node.close()));
    nodes = [];
    observer?.disconnect();
    observer = null;
  });

  /** Two nodes on one Redis prefix, and what a raw subscriber reads on their presence topic. */
  async function cluster(options: RiversideModuleOptions): Promise<{ nodes: RunningApp[]; presenceMessages: string[] }> {
    const prefix = uniquePrefix('presence-off');
    const presenceMessages: string[] = [];
    observer = rawRedis();
    await observer.connect();
    observer.on('message', (_channel: string, message: string) => presenceMessages.push(message));
    await observer.subscribe(`${prefix}:presence:cluster`);
    for (let n = 0; n < 2; n++) {
      nodes.push(await startRiverside({ transport: new RedisTransport({ url: REDIS_URL, prefix }), ...options }, [NodeHandler]));
    }
    return { nodes, presenceMessages };
  }

  /** Sessions open on both nodes, join a channel, and a delivery crosses from node 0 to node 1. */
  async function openJoinAndDeliver([first, second]: RunningApp[]): Promise<void> {
    const ann = await first.connect('/', { query: { user: 'ann' } });
    const bob = await second.connect('/', { query: { user: 'bob' } });
    for (const client of [ann, bob]) {
      client.send({ join: 'room' });
      expect(await client.expectMessage()).toEqual({ joined: 'room' });
    }
    ann.send({ deliver: { user: 'bob' }, message: { hi: 'bob' } });
    expect(await ann.expectMessage()).toEqual({ delivered: 0 });
    expect(await bob.expectMessage()).toEqual({ hi: 'bob' });
    await ann.close();
    await bob.close();
  }

  it('says nothing on the presence topic (no heartbeat, no change) while deliveries still cross nodes', async () => {
    const { nodes, presenceMessages } = await cluster({ presence: false });
    await openJoinAndDeliver(nodes);
    // A node with presence on would have said hello, heartbeated once a second and told every change.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(presenceMessages).toEqual([]);
  });

  it('with presence on (the default), the same sessions are told on the presence topic', async () => {
    const { nodes, presenceMessages } = await cluster({ presenceHeartbeat: 100 });
    await openJoinAndDeliver(nodes);
    await eventually(() => {
      const kinds = new Set(presenceMessages.map((message) => (JSON.parse(message) as { t: string }).t));
      expect([...kinds]).toEqual(expect.arrayContaining(['hello', 'hb', 'delta']));
    });
  });

  it("refuses the cluster-wide queries and on() with a PresenceDisabledError; localMembers() answers for this node", async () => {
    const [first] = (await cluster({ presence: false })).nodes;
    const ann = await first.connect('/', { query: { user: 'ann' } });
    ann.send({ join: 'room' });
    expect(await ann.expectMessage()).toEqual({ joined: 'room' });

    const presence = first.app.get(PresenceService);
    for (const query of [() => presence.members('room'), () => presence.count('room'), () => presence.isOnline('ann'), () => presence.sessionsOf('ann')]) {
      await expect(query()).rejects.toMatchObject({ name: 'PresenceDisabledError', code: 'RIVERSIDE_ERR_PRESENCE_DISABLED' });
    }
    await expect(first.app.get(DeliveryService).members('room')).rejects.toBeInstanceOf(PresenceDisabledError);
    expect(() => presence.on(() => {})).toThrow(
      "PresenceService.on() needs cluster presence, which is off (RiversideModule option presence: false). " +
        "Remove that option to turn it on, or use localMembers()/localCount() for this node's sessions.",
    );
    expect(presence.localMembers('room')).toEqual([{ userId: 'ann', sessionId: expect.any(String), meta: { name: 'ann' }, node: presence.nodeId }]);
    expect(presence.localCount('room')).toBe(1);
  });
});
