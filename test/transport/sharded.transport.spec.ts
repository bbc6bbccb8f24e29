import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DeliveryService, InvalidOptionsError, LocalTransport, PresenceService, RedisTransport, RiversideStats, ShardedTransport } from 'nestjs-riverside';
import { ClusterNodeHandler, join, runClusterDeliveryContract } from '../cluster/cluster-delivery.contract.js';
import { freePort, uniquePrefix } from '../support/brokers.js';
import { OwnRedisServer, REDIS_URL, redisAvailable, redisServerAvailable, subscriberCount } from '../support/redis.js';
import { eventually, type RunningApp, startRiverside } from '../support/riverside-app.js';
import { runTransportContract } from './transport.contract.js';

// STYLE 18: skipped (loudly) only outside CI when Redis is unreachable; under CI this throws.
const redisUp = await redisAvailable();
const redisServerUp = await redisServerAvailable();

/** Clients the test itself opened, cut after each test. */
const opened: Redis[] = [];
function ioredis(url: string): Redis {
  const client = new Redis(url);
  client.on('error', () => {}); // the outage test stops a server: no ioredis console noise
  opened.push(client);
  return client;
}
afterEach(() => {
  for (const client of opened.splice(0)) client.disconnect();
});

/** A node's transport: one RedisTransport per server, in the order given. */
function sharded(urls: readonly string[], prefix: string): ShardedTransport {
  return new ShardedTransport({ shards: urls.map((url) => new RedisTransport({ url, prefix })) });
}

/** On which of `urls` (by position) `topic` has subscribers, and how many on each. */
async function subscribersByServer(urls: readonly string[], prefixed: string): Promise<number[]> {
  return Promise.all(urls.map((url) => subscriberCount(ioredis(url), prefixed)));
}

describe.runIf(redisUp && redisServerUp)('ShardedTransport over two Redis servers', () => {
  let second: OwnRedisServer;
  let urls: string[];
  beforeAll(async () => {
    second = await OwnRedisServer.start();
    urls = [REDIS_URL, second.url];
  });
  afterAll(() => second?.stop());

  runTransportContract('ShardedTransport (two Redis servers)', async () => {
    const prefix = uniquePrefix('sharded');
    const a = sharded(urls, prefix);
    const b = sharded(urls, prefix);
    const otherPrefix = sharded(urls, `${prefix}-other`);
    return { a, b, otherPrefix, cleanup: () => Promise.all([a.close(), b.close(), otherPrefix.close()]).then(() => {}) };
  });

  runClusterDeliveryContract('two Redis servers, sharded', () => {
    const prefix = uniquePrefix('sharded-nodes');
    return {
      a: sharded(urls, prefix),
      b: sharded(urls, prefix),
      // A topic lives on one server: what the node holds is the sum over both.
      subscribers: async (topic: string) => (await subscribersByServer(urls, `${prefix}:${topic}`)).reduce((sum, count) => sum + count, 0),
    };
  });

  describe('with Nest apps', () => {
    let nodes: RunningApp[] = [];
    afterEach(async () => {
      await Promise.all(nodes.map((node) => node.close()));
      nodes = [];
    });

    async function twoNodes(prefix: string, options: { bridge?: boolean; presenceHeartbeat?: number } = {}) {
      nodes = [
        await startRiverside({ transport: sharded(urls, prefix), ...options }, [ClusterNodeHandler]),
        await startRiverside({ transport: sharded(urls, prefix), ...options }, [ClusterNodeHandler]),
      ];
      return { nodeA: nodes[0], nodeB: nodes[1] };
    }

    it('puts each user topic on exactly one server, both servers carrying some, and delivers to every user', async () => {
      const prefix = uniquePrefix('spread');
      const { nodeA, nodeB } = await twoNodes(prefix, { presenceHeartbeat: 60_000 });
      const users = Array.from({ length: 24 }, (_, i) => `u${i}`);
      const clients = await Promise.all(users.map((user) => nodeB.connect('/', { query: { user } })));
      let placement: number[] = [];
      await eventually(async () => {
        const counts = await Promise.all(users.map((user) => subscribersByServer(urls, `${prefix}:user:${user}`)));
        for (const count of counts) expect([...count].sort()).toEqual([0, 1]);
        placement = counts.map((count) => count.indexOf(1));
      });
      expect(placement.filter((server) => server === 0).length).toBeGreaterThan(2);
      expect(placement.filter((server) => server === 1).length).toBeGreaterThan(2);

      const delivery = nodeA.app.get(DeliveryService);
      users.forEach((user, n) => delivery.deliver({ user }, { n }));
      for (const [n, client] of clients.entries()) expect(await client.expectMessage()).toEqual({ n });
    });

    it("listens for presence on every server, carries each node's presence through one, and members() spans the nodes", async () => {
      const prefix = uniquePrefix('sharded-presence');
      // Which server carried each node's presence messages, by the node id they carry.
      const carriedBy = new Map<string, Set<number>>();
      await Promise.all(
        urls.map(async (url, server) => {
          const observer = ioredis(url);
          observer.on('message', (_channel: string, message: string) => {
            const node = (JSON.parse(message) as { n: string }).n;
            carriedBy.set(node, (carriedBy.get(node) ?? new Set()).add(server));
          });
          await observer.subscribe(`${prefix}:presence:cluster`);
        }),
      );
      const { nodeA, nodeB } = await twoNodes(prefix);
      await join(await nodeA.connect('/', { query: { user: 'ann' } }), 'room');
      await join(await nodeB.connect('/', { query: { user: 'bob' } }), 'room');
      for (const node of [nodeA, nodeB]) {
        await eventually(async () => {
          const answer = await node.app.get(PresenceService).members('room');
          expect(answer.complete).toBe(true);
          expect(answer.members.map((member) => member.userId).sort()).toEqual(['ann', 'bob']);
        });
      }
      // Hellos, deltas and a heartbeat or two from each node, each node's on one server only.
      await eventually(() => expect(carriedBy.size).toBe(2), 3000);
      for (const servers of carriedBy.values()) expect(servers.size).toBe(1);
      // The shared topic and the two nodes' own topics, held on both servers.
      const presenceTopics = await Promise.all(urls.map((url) => ioredis(url).pubsub('CHANNELS', `${prefix}:presence:*`) as Promise<string[]>));
      expect(presenceTopics.map((topics) => topics.length)).toEqual([3, 3]);
    });

    it("takes what a service publishes under ext: or on bridge from either server, once", async () => {
      const prefix = uniquePrefix('sharded-external');
      const { nodeA } = await twoNodes(prefix, { bridge: true, presenceHeartbeat: 60_000 });
      const user = await nodeA.connect('/', { query: { user: '42' } });
      await eventually(async () => expect((await subscribersByServer(urls, `${prefix}:user:42`)).sort()).toEqual([0, 1]));
      for (const [n, url] of urls.entries()) {
        await ioredis(url).publish(`${prefix}:ext:user:42`, `{"ext":${n}}`);
        expect(await user.expectMessage()).toEqual({ ext: n });
        await ioredis(url).publish(`${prefix}:bridge`, JSON.stringify({ recipients: ['42'], data: { bridge: n } }));
        expect(await user.expectMessage()).toEqual({ bridge: n });
      }
      await user.expectNoMessage(150);
    });

    describe('nodes that list the servers differently', () => {
      const layoutErrors = () => nodes.flatMap((node) => node.logger.errors()).filter((message) => message.startsWith('ShardedTransport: node '));
      /** The nodes (host/pid/tag) that logged such an error. */
      const loggedOn = () => new Set(layoutErrors().map((message) => /on this node \(([^)]+)\)/.exec(message)?.[1]));
      const startWith = async (prefix: string, ...lists: string[][]) => {
        for (const list of lists) nodes.push(await startRiverside({ transport: sharded(list, prefix), presenceHeartbeat: 60_000 }, [ClusterNodeHandler]));
      };

      it('is an error on both nodes when one lists them in another order', async () => {
        await startWith(uniquePrefix('layout-order'), urls, [...urls].reverse());
        await eventually(() => expect(loggedOn().size).toBe(2));
        expect(layoutErrors()[0]).toMatch(
          /^ShardedTransport: node \S+ lists 2 shard\(s\) and takes the broker that is shard [01] of 2 on this node \(\S+\) for its shard [01]: deliveries between the two are lost\. Give every node the same brokers in the same order\.$/,
        );
      });

      it('is an error on both nodes when one lists fewer servers', async () => {
        await startWith(uniquePrefix('layout-count'), urls, urls.slice(0, 1));
        await eventually(() => expect(loggedOn().size).toBe(2));
        expect(layoutErrors().join('\n')).toContain('lists 1 shard(s) and takes the broker that is shard 0 of 2');
        expect(layoutErrors().join('\n')).toContain('lists 2 shard(s) and takes the broker that is shard 0 of 1');
      });

      it('is quiet when every node lists the same servers in the same order, each having told every server', async () => {
        const prefix = uniquePrefix('layout-same');
        const notices = await Promise.all(
          urls.map(async (url) => {
            const observer = ioredis(url);
            const heard: string[] = [];
            observer.on('message', (_channel: string, message: string) => heard.push(message));
            await observer.subscribe(`${prefix}:shards`);
            return heard;
          }),
        );
        await startWith(prefix, urls, urls);
        // One notice per node on each server, saying the server's place in the list.
        await eventually(() => expect(notices.map((heard) => heard.map((text) => JSON.parse(text).s))).toEqual([[0, 0], [1, 1]]));
        await new Promise((resolve) => setTimeout(resolve, 200));
        expect(layoutErrors()).toEqual([]);
        expect(notices.map((heard) => heard.length)).toEqual([2, 2]); // nothing answered
      });

      it('ignores anything else published on the shards topic, and keeps delivering', async () => {
        const prefix = uniquePrefix('layout-junk');
        await startWith(prefix, urls, urls);
        const user = await nodes[1].connect('/', { query: { user: 'j' } });
        for (const url of urls) {
          for (const junk of ['not json', 'null', '[]', '{"s":"0","n":2,"node":"x"}', `{"s":0,"n":2,"node":"${'x'.repeat(400)}"}`]) {
            await ioredis(url).publish(`${prefix}:shards`, junk);
          }
        }
        nodes[0].app.get(DeliveryService).deliver({ user: 'j' }, { still: 'here' });
        expect(await user.expectMessage()).toEqual({ still: 'here' });
        expect(layoutErrors()).toEqual([]);
      });
    });
  });

  /**
   * For a test that stops a Redis server: `start()` starts a second server of the test's own and
   * gives both servers' URLs; the nodes the test puts in `nodes` are closed, and the server
   * stopped, after the describe.
   */
  function stoppableServer() {
    const nodes: RunningApp[] = [];
    let own: OwnRedisServer | undefined;
    afterAll(async () => {
      await Promise.all(nodes.map((node) => node.close()));
      await own?.stop();
    });
    return {
      nodes,
      async start() {
        own = await OwnRedisServer.start();
        return { own, servers: [REDIS_URL, own.url] };
      },
    };
  }

  describe.runIf(redisServerUp)('while one server is down', () => {
    const outage = stoppableServer();

    it('delivers the topics of the server that is up, and the others again once their server is back', async () => {
      const { own, servers } = await outage.start();
      const prefix = uniquePrefix('shard-outage');
      const nodes = outage.nodes;
      nodes.push(
        await startRiverside({ transport: sharded(servers, prefix), presenceHeartbeat: 60_000 }, [ClusterNodeHandler]),
        await startRiverside({ transport: sharded(servers, prefix), presenceHeartbeat: 60_000 }, [ClusterNodeHandler]),
      );
      const [nodeA, nodeB] = nodes;
      // Users until one lives on each server.
      const onServer: { user: string; client: Awaited<ReturnType<RunningApp['connect']>> }[] = [];
      for (let n = 0; onServer.filter(Boolean).length < 2 && n < 64; n++) {
        const user = `o${n}`;
        const client = await nodeB.connect('/', { query: { user } });
        let counts: number[] = [];
        await eventually(async () => {
          counts = await subscribersByServer(servers, `${prefix}:user:${user}`);
          expect(counts.reduce((sum, count) => sum + count, 0)).toBe(1);
        });
        onServer[counts.indexOf(1)] ??= { user, client };
      }
      const [up, down] = onServer;
      const delivery = nodeA.app.get(DeliveryService);
      const errors = () => nodeA.app.get(RiversideStats).transportErrors;

      await own.stop();
      const errorsBefore = errors();
      delivery.deliver({ user: down.user }, { lost: true });
      delivery.deliver({ user: up.user }, { still: 'across' });
      expect(await up.client.expectMessage()).toEqual({ still: 'across' });
      await eventually(() => expect(errors()).toBeGreaterThan(errorsBefore));
      // The log says which server is gone.
      const logged = () => nodes.flatMap((node) => node.logger.entries.map((entry) => entry.message)).join('\n');
      await eventually(() => expect(logged()).toContain(`RedisTransport: lost the Redis subscriber connection to 127.0.0.1:${own.port};`));
      expect(logged()).not.toContain(`lost the Redis subscriber connection to ${new URL(REDIS_URL).host}`);

      // A brand-new, empty server: the user gets messages again only if node B subscribes again.
      await own.start();
      let sent = 0;
      const deadline = Date.now() + 8000;
      for (;;) {
        delivery.deliver({ user: down.user }, { back: ++sent });
        try {
          expect(await down.client.expectMessage(100)).toEqual({ back: expect.any(Number) });
          break;
        } catch (error) {
          if (Date.now() > deadline) throw error;
        }
      }
      expect(up.client.ws.readyState).toBe(up.client.ws.OPEN);
    });
  });

  describe.runIf(redisServerUp)("when a node's presence server goes down", () => {
    const HEARTBEAT = 100;
    const TIMEOUT = 600;
    const outage = stoppableServer();

    it('moves its presence to the other server: the other nodes never count it missing', async () => {
      const { own, servers } = await outage.start();
      const nodes = outage.nodes;
      const prefix = uniquePrefix('presence-failover');
      // The server each presence message came through, by the node id it carries.
      const carriedBy: { node: string; server: number }[] = [];
      await Promise.all(
        servers.map(async (url, server) => {
          const observer = ioredis(url);
          observer.on('message', (_channel: string, message: string) => carriedBy.push({ node: (JSON.parse(message) as { n: string }).n, server }));
          await observer.subscribe(`${prefix}:presence:cluster`);
        }),
      );
      const start = () => startRiverside({ transport: sharded(servers, prefix), presenceHeartbeat: HEARTBEAT, presenceTimeout: TIMEOUT }, [ClusterNodeHandler]);
      const serverOfLatest = () => carriedBy.at(-1)?.server;

      // A node picks its presence server at random: start nodes until one has the server this test can stop.
      let watched: RunningApp | undefined;
      for (let attempt = 0; attempt < 12 && watched === undefined; attempt++) {
        const node = await start();
        carriedBy.length = 0;
        await eventually(() => expect(serverOfLatest()).toBeDefined());
        if (serverOfLatest() === 1) watched = node;
        else await node.close();
      }
      if (watched === undefined) throw new Error('no node picked the second server in 12 starts');
      const watchedId = carriedBy.at(-1)!.node;
      nodes.push(watched);
      const other = await start();
      nodes.push(other);
      await join(await watched.connect('/', { query: { user: 'ann' } }), 'room');
      const presence = other.app.get(PresenceService);
      await eventually(async () => expect((await presence.members('room')).members.map((member) => member.userId)).toEqual(['ann']));
      const leaves: unknown[] = [];
      presence.on((event) => {
        if (event.type === 'leave') leaves.push(event);
      });

      await own.stop();
      const stoppedAt = carriedBy.length;
      // Its heartbeats come through the first server now.
      await eventually(() => expect(carriedBy.slice(stoppedAt).some((seen) => seen.node === watchedId && seen.server === 0)).toBe(true), 2000);
      await new Promise((resolve) => setTimeout(resolve, 3 * TIMEOUT));
      expect(leaves).toEqual([]);
      expect(await presence.members('room')).toMatchObject({ complete: true, members: [{ userId: 'ann' }] });
    });
  });

  it('rejects connect() naming the shard that could not connect, and closes the others', async () => {
    const port = await freePort();
    const unreachable = `redis://127.0.0.1:${port}`;
    const reachable = new RedisTransport({ url: REDIS_URL, prefix: uniquePrefix('half') });
    const transport = new ShardedTransport({ shards: [reachable, new RedisTransport({ url: unreachable, prefix: 'unused', readyTimeout: 300 })] });
    await expect(transport.connect()).rejects.toThrow(
      new RegExp(`^ShardedTransport: shard 1 of 2 could not connect: RedisTransport could not reach Redis at 127\\.0\\.0\\.1:${port} within readyTimeout \\(300 ms\\)`),
    );
    await expect(reachable.publish('user:1', Buffer.from('x'))).rejects.toThrow('RedisTransport is not connected');
  });
});

describe('ShardedTransport options', () => {
  const redis = () => new RedisTransport({ url: REDIS_URL });

  it.each([
    ['no shards', () => new ShardedTransport({ shards: [] }), /^ShardedTransport: invalid option "shards": expected a non-empty array of transports \(one per broker\)/],
    ['not an array', () => new ShardedTransport({ shards: redis() as never }), /^ShardedTransport: invalid option "shards": expected a non-empty array/],
    ['not a transport', () => new ShardedTransport({ shards: [redis(), { url: REDIS_URL } as never] }), /^ShardedTransport: invalid option "shards\[1\]": expected a RiversideTransport/],
    ['LocalTransport', () => new ShardedTransport({ shards: [new LocalTransport()] }), /^ShardedTransport: invalid option "shards\[0\]": expected a transport to a broker: LocalTransport carries nothing between nodes/],
    ['one transport twice', () => { const shard = redis(); return new ShardedTransport({ shards: [shard, shard] }); }, /^ShardedTransport: invalid option "shards\[1\]": expected a transport not listed already \(it is shards\[0\] too\)/],
    ['an unknown option', () => new ShardedTransport({ shards: [redis()], urls: [] } as never), /^ShardedTransport: invalid option "urls": expected one of the known options \(shards\)/],
  ])('refuses %s, naming the option', (_, create, message) => {
    expect(create).toThrow(InvalidOptionsError);
    expect(create).toThrow(message);
  });

  it('refuses shards of which only some take external publications', () => {
    const withoutExternal = { connect: async () => {}, publish: async () => {}, subscribe: async () => {}, unsubscribe: async () => {}, close: async () => {} };
    expect(() => new ShardedTransport({ shards: [redis(), withoutExternal] })).toThrow(
      /^ShardedTransport: invalid option "shards": expected transports that all offer subscribeExternal, or none of them/,
    );
    expect(new ShardedTransport({ shards: [withoutExternal, { ...withoutExternal }] }).subscribeExternal).toBeUndefined();
  });
});
