import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeliveryService, RedisTransport, RiversideStats } from 'nestjs-riverside';
import { ClusterNodeHandler, join, runClusterDeliveryContract } from '../cluster/cluster-delivery.contract.js';
import { uniquePrefix } from '../support/brokers.js';
import { OwnRedisServer, REDIS_URL, rawRedis, redisAvailable, redisServerAvailable, subscriberCount } from '../support/redis.js';
import { eventually, type RunningApp, startRiverside } from '../support/riverside-app.js';
import { runTransportContract } from './transport.contract.js';

// STYLE 18: skipped (loudly) only outside CI when Redis is unreachable; under CI this throws.
const redisUp = await redisAvailable();
const redisServerUp = await redisServerAvailable();

/** Clients the test itself opened, cut after each test (never a QUIT that could wait on a Redis that is down). */
const opened: Redis[] = [];
function ioredis(url = REDIS_URL): Redis {
  const client = new Redis(url);
  client.on('error', () => {}); // the outage tests stop Redis: no ioredis console noise
  opened.push(client);
  return client;
}
afterEach(() => {
  for (const client of opened.splice(0)) client.disconnect();
});

/** What publish() says while the publisher connection to the server on `port` is not ready: the server named. */
const notReady = (port: number) => new RegExp(`^Redis publisher connection to 127\\.0\\.0\\.1:${port} is \\w+, not ready$`);

describe.runIf(redisUp)('RedisTransport on a real Redis', () => {
  // SPEC 9.1, STYLE 18: the shared contract, once per way of giving RedisTransport its connections.
  runTransportContract('RedisTransport ({ url })', async () => {
    const prefix = uniquePrefix('url');
    const a = new RedisTransport({ url: REDIS_URL, prefix });
    const b = new RedisTransport({ url: REDIS_URL, prefix });
    const otherPrefix = new RedisTransport({ url: REDIS_URL, prefix: `${prefix}-other` });
    return { a, b, otherPrefix, cleanup: () => Promise.all([a.close(), b.close(), otherPrefix.close()]).then(() => {}) };
  });

  runTransportContract('RedisTransport ({ client })', async () => {
    const prefix = uniquePrefix('client');
    const a = new RedisTransport({ client: ioredis(), prefix });
    const b = new RedisTransport({ client: ioredis(), prefix });
    const otherPrefix = new RedisTransport({ client: ioredis(), prefix: `${prefix}-other` });
    return { a, b, otherPrefix, cleanup: () => Promise.all([a.close(), b.close(), otherPrefix.close()]).then(() => {}) };
  });

  runTransportContract('RedisTransport ({ publisher, subscriber })', async () => {
    const prefix = uniquePrefix('pair');
    const pair = () => ({ publisher: ioredis(), subscriber: ioredis() });
    const a = new RedisTransport({ ...pair(), prefix });
    const b = new RedisTransport({ ...pair(), prefix });
    const otherPrefix = new RedisTransport({ ...pair(), prefix: `${prefix}-other` });
    return { a, b, otherPrefix, cleanup: () => Promise.all([a.close(), b.close(), otherPrefix.close()]).then(() => {}) };
  });

  describe('connections', () => {
    it("sends one event-loop turn's publishes in one write to Redis, in order, and the next turn's in another", async () => {
      const prefix = uniquePrefix('corked');
      const publisher = ioredis();
      const a = new RedisTransport({ publisher, subscriber: ioredis(), prefix });
      const b = new RedisTransport({ url: REDIS_URL, prefix });
      await Promise.all([a.connect(), b.connect()]);
      const received: string[] = [];
      await b.subscribe('user:1', (payload) => received.push(Buffer.from(payload).toString()));
      // What leaves for Redis: each _write or _writev of the publisher's socket is one write.
      const socket = (publisher as unknown as { stream: { _write: () => void; _writev: () => void } }).stream;
      const writes = [vi.spyOn(socket, '_write'), vi.spyOn(socket, '_writev')];
      const writeCount = () => writes.reduce((n, spy) => n + spy.mock.calls.length, 0);

      const first = Array.from({ length: 16 }, (_, i) => a.publish('user:1', Buffer.from(`m${i}`)));
      expect(writeCount()).toBe(0); // not before the end of the turn
      await Promise.all(first);
      expect(writeCount()).toBe(1);
      await Promise.all([a.publish('user:1', Buffer.from('m16')), a.publish('user:1', Buffer.from('m17'))]);
      expect(writeCount()).toBe(2);
      await eventually(() => expect(received).toEqual(Array.from({ length: 18 }, (_, i) => `m${i}`)));
      await Promise.all([a.close(), b.close()]);
    });

    it('subscribes on <prefix>:<topic>, and leaves no subscription behind after close(), whoever owns the clients', async () => {
      const prefix = uniquePrefix('owned');
      const observer = ioredis();
      const given = { publisher: ioredis(), subscriber: ioredis() };
      const transports = [
        new RedisTransport({ url: REDIS_URL, prefix }),
        new RedisTransport({ client: ioredis(), prefix }),
        new RedisTransport({ ...given, prefix }),
      ];
      for (const transport of transports) await transport.connect();
      for (const [i, transport] of transports.entries()) await transport.subscribe(`user:${i}`, () => {});
      expect(await Promise.all([0, 1, 2].map((i) => subscriberCount(observer, `${prefix}:user:${i}`)))).toEqual([1, 1, 1]);

      await Promise.all(transports.map((transport) => transport.close()));
      expect(await Promise.all([0, 1, 2].map((i) => subscriberCount(observer, `${prefix}:user:${i}`)))).toEqual([0, 0, 0]);
      // Clients you give stay yours: open and usable after close().
      expect([given.publisher.status, given.subscriber.status]).toEqual(['ready', 'ready']);
      expect(await given.subscriber.ping()).toBe('PONG');
    });

    it('rejects publish() and subscribe() before connect() and after close(), saying so', async () => {
      const transport = new RedisTransport({ url: REDIS_URL, prefix: uniquePrefix('closed') });
      await expect(transport.publish('user:1', Buffer.from('x'))).rejects.toThrow(
        'RedisTransport is not connected (connect() was not called, or close() was)',
      );
      await transport.connect();
      await transport.close();
      await expect(transport.subscribe('user:1', () => {})).rejects.toThrow('RedisTransport is not connected');
      await transport.close(); // idempotent
    });

    it('fails connect() within readyTimeout when Redis cannot be reached, and stops trying', async () => {
      // A port that accepts TCP and hangs up at once: each connection attempt is counted.
      const sockets = new Set<Socket>();
      let attempts = 0;
      const refuser = createServer((socket) => {
        attempts++;
        sockets.add(socket);
        socket.destroy();
      }).listen(0, '127.0.0.1');
      await once(refuser, 'listening');
      const { port } = refuser.address() as { port: number };
      try {
        const transport = new RedisTransport({ url: `redis://127.0.0.1:${port}`, prefix: 'unused', readyTimeout: 300 });
        const started = Date.now();
        await expect(transport.connect()).rejects.toThrow(
          new RegExp(`^RedisTransport could not reach Redis at 127\\.0\\.0\\.1:${port} within readyTimeout \\(300 ms\\): the publisher connection is \\w+, the subscriber connection \\w+`),
        );
        expect(Date.now() - started).toBeLessThan(1500);
        expect(attempts).toBeGreaterThan(0);
        const seen = attempts;
        await new Promise((resolve) => setTimeout(resolve, 500));
        expect(attempts).toBe(seen);
      } finally {
        refuser.close();
      }
    });
  });

  describe('publishing on a connection of its own (url): no replies to read', () => {
    /** The publisher connection a url transport opened (private: what its socket reads is the point). */
    const publisherOf = (transport: RedisTransport) =>
      (transport as unknown as { publisher: Redis & { stream: Socket } }).publisher;

    /** Two connected transports on one prefix, A's publisher past its switch (made once it is ready). */
    async function twoTransports(prefix: string, urlOfA = REDIS_URL) {
      const a = new RedisTransport({ url: urlOfA, prefix });
      const b = new RedisTransport({ url: REDIS_URL, prefix });
      await Promise.all([a.connect(), b.connect()]);
      await crossing(a, b, 'user:warm', 1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      return { a, b, close: () => Promise.all([a.close(), b.close()]) };
    }

    /** Publishes `count` messages from A to B's subscription; what B got, and what A's publisher socket read meanwhile. */
    async function crossing(a: RedisTransport, b: RedisTransport, topic: string, count: number) {
      const socket = publisherOf(a).stream;
      const readBefore = socket.bytesRead;
      const received: string[] = [];
      await b.subscribe(topic, (payload) => received.push(Buffer.from(payload).toString()));
      for (let i = 0; i < count; i++) await a.publish(topic, Buffer.from(`m${i}`));
      await eventually(() => expect(received).toHaveLength(count));
      return { received, bytesRead: socket.bytesRead - readBefore };
    }

    it('publishes without Redis answering each PUBLISH: the publisher socket reads nothing while 200 messages cross, in order', async () => {
      const { a, b, close } = await twoTransports(uniquePrefix('quiet'));
      const { received, bytesRead } = await crossing(a, b, 'user:r', 200);
      expect(received).toEqual(Array.from({ length: 200 }, (_, i) => `m${i}`));
      expect(bytesRead).toBe(0);
      await close();
    });

    it('keeps publishing without replies after its publisher connection is killed and comes back', async () => {
      const { a, b, close } = await twoTransports(uniquePrefix('quiet-kill'));
      const before = publisherOf(a).stream;
      await ioredis().call('CLIENT', 'KILL', 'ADDR', `127.0.0.1:${before.localPort}`);
      await eventually(() => expect(publisherOf(a).stream).not.toBe(before));
      await eventually(() => expect(publisherOf(a).status).toBe('ready'));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect((await crossing(a, b, 'user:s', 50)).bytesRead).toBe(0);
      await close();
    });

    it('closes at once, what it published just before close() delivered', async () => {
      const { a, b } = await twoTransports(uniquePrefix('quiet-close'));
      const received: string[] = [];
      await b.subscribe('user:t', (payload) => received.push(Buffer.from(payload).toString()));
      void a.publish('user:t', Buffer.from('last'));
      const started = Date.now();
      await a.close();
      expect(Date.now() - started).toBeLessThan(300);
      await eventually(() => expect(received).toEqual(['last']));
      await b.close();
    });

    it.each([
      ['may not run CLIENT REPLY', (_prefix: string) => ['&*', '+@all', '-client']],
      ['may publish only to some channels under the prefix', (prefix: string) => [`&${prefix}:user:*`, '+@all']],
    ])('with a Redis user that %s: publishes as before, Redis answering each', async (_, rules) => {
      const prefix = uniquePrefix('quiet-acl');
      const user = `${prefix}-user`;
      const admin = ioredis();
      await admin.call('ACL', 'SETUSER', user, 'on', '>secret', '~*', ...rules(prefix));
      try {
        const { a, b, close } = await twoTransports(prefix, REDIS_URL.replace('redis://', `redis://${user}:secret@`));
        expect((await crossing(a, b, 'user:u', 10)).bytesRead).toBe(10 * ':1\r\n'.length);
        await close();
      } finally {
        await admin.call('ACL', 'DELUSER', user);
      }
    });
  });

  describe('with a Redis user refused some channels under the prefix', () => {
    it("refuses only the refused topic of a tick's subscribes, and after a reconnect subscribes the others again", async () => {
      const prefix = uniquePrefix('acl-topics');
      const user = `${prefix}-user`;
      const admin = ioredis();
      // Users' topics allowed, channels' not (say, an ACL that keeps a tenant to its own channels).
      await admin.call('ACL', 'SETUSER', user, 'on', '>secret', '~*', '+@all', `&${prefix}:user:*`, `&${prefix}:publish-check`);
      const transport = new RedisTransport({ url: REDIS_URL.replace('redis://', `redis://${user}:secret@`), prefix });
      const publisher = ioredis();
      try {
        await transport.connect();
        const received: string[] = [];
        // Asked in the same tick: they reach Redis in one SUBSCRIBE command, which Redis refuses whole.
        const [allowed, refused] = await Promise.allSettled([
          transport.subscribe('user:ann', (payload) => received.push(Buffer.from(payload).toString())),
          transport.subscribe('channel:secret', () => {}),
        ]);
        expect(allowed.status).toBe('fulfilled');
        expect(refused).toMatchObject({ status: 'rejected', reason: { message: expect.stringContaining('NOPERM') } });
        await publisher.publish(`${prefix}:user:ann`, 'before');
        await eventually(() => expect(received).toEqual(['before']));

        // Its subscriber connection dropped: the resubscription holds both topics again.
        await admin.call('CLIENT', 'KILL', 'USER', user, 'TYPE', 'pubsub');
        await eventually(async () => {
          await publisher.publish(`${prefix}:user:ann`, 'after');
          expect(received).toContain('after');
        }, 5000);
      } finally {
        await transport.close();
        publisher.disconnect();
        await admin.call('ACL', 'DELUSER', user);
        admin.disconnect();
      }
    });
  });

  describe('with Nest apps', () => {
    describe('external publishers (SPEC 9.4)', () => {
      let prefix: string;
      let node: RunningApp;
      beforeEach(async () => {
        prefix = uniquePrefix('external');
        node = await startRiverside({ transport: new RedisTransport({ url: REDIS_URL, prefix }) }, [ClusterNodeHandler]);
      });
      afterEach(() => node?.close());

      it('writes what a plain Redis client PUBLISHes on <prefix>:ext:user:42 to user 42: text as a text frame, other bytes as binary', async () => {
        const user42 = await node.connect('/', { query: { user: '42' } });
        const other = await node.connect('/', { query: { user: '43' } });
        const publisher = ioredis();
        await eventually(async () => expect(await subscriberCount(publisher, `${prefix}:user:42`)).toBe(1));

        // What `redis-cli PUBLISH <prefix>:ext:user:42 '{"hello":1}'` sends; the node's PSUBSCRIBE counts.
        expect(await publisher.publish(`${prefix}:ext:user:42`, '{"hello":1}')).toBe(1);
        const text = await user42.expectFrame();
        expect(text.isBinary).toBe(false);
        expect(text.data.toString()).toBe('{"hello":1}');

        await publisher.publish(`${prefix}:ext:user:42`, Buffer.from([0x00, 0x9f, 0xfe]));
        const binary = await user42.expectFrame();
        expect(binary.isBinary).toBe(true);
        expect([...binary.data]).toEqual([0x00, 0x9f, 0xfe]);
        await other.expectNoMessage(100);
      });

      it('writes bytes that look like node-to-node commands (FF 01 02 ..., FF 52 ...) as frames: they never close or info a session', async () => {
        const user42 = await node.connect('/', { query: { user: '42' } });
        const publisher = ioredis();
        await eventually(async () => expect(await subscriberCount(publisher, `${prefix}:user:42`)).toBe(1));
        // A version-1 close (kind 2) and info (kind 1), and a version-2 close, as they would read on a node topic.
        const hostile = [
          Buffer.from([0xff, 0x01, 0x02, 0x00, 0x00, 0x0f, 0xa1]),
          Buffer.concat([Buffer.from([0xff, 0x01, 0x01, 0x00, 0x00]), Buffer.from('{"inject":true}')]),
          Buffer.from([0xff, 0x52, 0x02, 0x00, 0x02, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x02, 0x0f, 0xa1]),
        ];
        for (const bytes of hostile) await publisher.publish(`${prefix}:ext:user:42`, bytes);
        for (const bytes of hostile) {
          const frame = await user42.expectFrame();
          expect(frame.isBinary).toBe(true);
          expect([...frame.data]).toEqual([...bytes]);
        }
        // Still open, and no @OnInfo ran (it would have answered { info }).
        user42.send({ join: 'after' });
        expect(await user42.expectMessage()).toEqual({ joined: 'after' });
        expect(node.app.get(RiversideStats).terminations).toEqual({});
      });

      it('reaches channel members and one session the same way', async () => {
        const member = await node.connect('/', { query: { user: 'm', sid: 'tab/1' } });
        await join(member, 'news');
        const publisher = ioredis();
        await eventually(async () => expect(await subscriberCount(publisher, `${prefix}:channel:news`)).toBe(1));
        await publisher.publish(`${prefix}:ext:channel:news`, 'breaking');
        expect((await member.expectFrame()).data.toString()).toBe('breaking');
        await publisher.publish(`${prefix}:ext:session:m/tab/1`, 'just you');
        expect((await member.expectFrame()).data.toString()).toBe('just you');
      });
    });

    // Node A has a connection of its own ({ url }), node B a client it was given ({ client }).
    runClusterDeliveryContract('one Redis', () => {
      const prefix = uniquePrefix('nodes');
      const observer = ioredis();
      return {
        a: new RedisTransport({ url: REDIS_URL, prefix }),
        b: new RedisTransport({ client: ioredis(), prefix }),
        subscribers: (topic: string) => subscriberCount(observer, `${prefix}:${topic}`),
      };
    });

    describe.runIf(redisServerUp)('while Redis is down (SPEC 9.5, 14.2)', () => {
      let server: OwnRedisServer;
      let nodes: RunningApp[] = [];
      beforeAll(async () => {
        server = await OwnRedisServer.start();
      });
      afterAll(() => server?.stop());
      afterEach(async () => {
        await Promise.all(nodes.map((node) => node.close()));
        nodes = [];
        await server.stop();
        await server.start();
      });

      async function twoNodes(prefix: string) {
        const transportA = new RedisTransport({ url: server.url, prefix });
        const transportB = new RedisTransport({ url: server.url, prefix });
        // Presence heartbeats spaced out: during the outage each would be one more counted failure.
        nodes = [
          await startRiverside({ transport: transportA, presenceHeartbeat: 60_000 }, [ClusterNodeHandler]),
          await startRiverside({ transport: transportB, presenceHeartbeat: 60_000 }, [ClusterNodeHandler]),
        ];
        return { nodeA: nodes[0], nodeB: nodes[1], transportA, transportB };
      }

      it('delivers locally, counts failed publishes, then delivers across again by itself once Redis is back', async () => {
        const prefix = uniquePrefix('outage');
        const { nodeA, nodeB, transportA } = await twoNodes(prefix);
        const remote = await nodeB.connect('/', { query: { user: 'bob' } });
        const local = await nodeA.connect('/', { query: { user: 'ann' } });
        const observer = rawRedis(server.url);
        await observer.connect();
        await eventually(async () => expect(await subscriberCount(observer, `${prefix}:user:bob`)).toBe(1));
        observer.disconnect();
        const delivery = nodeA.app.get(DeliveryService);
        const stats = nodeA.app.get(RiversideStats);
        delivery.deliver({ user: 'bob' }, { before: true });
        expect(await remote.expectMessage()).toEqual({ before: true });

        await server.stop();
        // Once the node has noticed, a publish fails at once instead of queueing.
        await eventually(async () => {
          const started = Date.now();
          await expect(transportA.publish('user:bob', Buffer.from('x'))).rejects.toThrow(notReady(server.port));
          expect(Date.now() - started).toBeLessThan(50);
        });
        const errorsBefore = stats.transportErrors;
        expect(delivery.deliver({ user: 'ann' }, { still: 'local' })).toBe(1);
        expect(await local.expectMessage()).toEqual({ still: 'local' });
        await eventually(() => expect(stats.transportErrors).toBe(errorsBefore + 1));
        // Nest's Logger is process-wide: with two apps in one process the last one's logger records.
        const logged = () => [...nodeA.logger.entries, ...nodeB.logger.entries].map((entry) => entry.message).join('\n');
        await eventually(() => expect(logged()).toContain(`Cluster transport failed publishing to user:ann: Redis publisher connection to 127.0.0.1:${server.port} is`));
        expect(logged()).toContain(
          `RedisTransport: lost the Redis subscriber connection to 127.0.0.1:${server.port}; deliveries from other nodes are missed until it is back`,
        );

        // A brand-new, empty Redis: bob's session gets messages again only if node B resubscribes.
        await server.start();
        let sent = 0;
        const received = await (async () => {
          const deadline = Date.now() + 8000;
          for (;;) {
            delivery.deliver({ user: 'bob' }, { after: ++sent });
            try {
              return await remote.expectMessage(100);
            } catch (error) {
              if (Date.now() > deadline) throw error;
            }
          }
        })();
        expect(received).toEqual({ after: expect.any(Number) });
        expect(remote.ws.readyState).toBe(remote.ws.OPEN);
      });

      it('with clients you give (offline queue and autoResubscribe on, the ioredis defaults): fails fast, then restores exactly the topics still needed', async () => {
        const prefix = uniquePrefix('given');
        const publisher = ioredis(server.url);
        const transport = new RedisTransport({ publisher, subscriber: ioredis(server.url), prefix });
        await transport.connect();
        const received: string[] = [];
        await transport.subscribe('user:kept', (payload) => received.push(`kept ${Buffer.from(payload)}`));
        await transport.subscribe('user:left', (payload) => received.push(`left ${Buffer.from(payload)}`));

        await server.stop();
        // A publish written before ioredis notices waits for ioredis' retries (maxRetriesPerRequest);
        // once it has noticed, RedisTransport fails it at once, offline queue or not.
        await eventually(() => expect(publisher.status).not.toBe('ready'));
        await eventually(async () => {
          const started = Date.now();
          await expect(transport.publish('user:kept', Buffer.from('x'))).rejects.toThrow(notReady(server.port));
          expect(Date.now() - started).toBeLessThan(50);
        });
        await transport.unsubscribe('user:left');

        await server.start();
        const observer = rawRedis(server.url);
        await observer.connect();
        try {
          await eventually(async () => expect(await subscriberCount(observer, `${prefix}:user:kept`)).toBe(1), 5000);
          await eventually(() => transport.publish('user:kept', Buffer.from('back')), 5000);
          await observer.publish(`${prefix}:user:left`, 'stale');
          await eventually(() => expect(received).toEqual(['kept back']));
          // ioredis resubscribed user:left on its own; the transport drops it at its first message.
          await eventually(async () => expect(await subscriberCount(observer, `${prefix}:user:left`)).toBe(0));
          await new Promise((resolve) => setTimeout(resolve, 100));
          expect(received).toEqual(['kept back']);
        } finally {
          observer.disconnect();
          await transport.close();
        }
      });

      it('shuts an app down promptly while Redis is down', async () => {
        const { nodeA, nodeB } = await twoNodes(uniquePrefix('shutdown'));
        const client = await nodeA.connect('/', { query: { user: 'zed' } });
        await join(client, 'room');
        await server.stop();
        const started = Date.now();
        await Promise.all([nodeA.close(), nodeB.close()]);
        expect(Date.now() - started).toBeLessThan(2000);
        nodes = [];
      });
    });
  });
});
