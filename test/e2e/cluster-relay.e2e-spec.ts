import { afterEach, describe, expect, it } from 'vitest';
import { type AuthRequest, DeliveryService, OnAuthenticate, OnInit, PresenceService, RiversideHandler, RiversideStats, type TransportMessageHandler } from 'nestjs-riverside';
import { MemoryBus, MemoryBusTransport } from 'nestjs-riverside/testing';
import { ClusterNodeHandler, join, runClusterDeliveryContract, twoNodes } from '../cluster/cluster-delivery.contract.js';
import { eventually, type RunningApp, startRiverside } from '../support/riverside-app.js';

/** Announces itself from @OnInit: what a client waits for before it counts as connected. */
@RiversideHandler({ path: '/ready' })
class ReadyHandler {
  @OnAuthenticate()
  authenticate(req: AuthRequest) {
    return { userId: String(req.queries.user) };
  }

  @OnInit()
  init() {
    return { ready: true };
  }
}

/** A broker that takes its time to confirm a SUBSCRIBE. */
class SlowSubscribeTransport extends MemoryBusTransport {
  override async subscribe(topic: string, handler: TransportMessageHandler): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 300));
    return super.subscribe(topic, handler);
  }
}

/** A broker that never confirms a SUBSCRIBE of a channel (users are confirmed at once). */
class SilentChannelTransport extends MemoryBusTransport {
  override async subscribe(topic: string, handler: TransportMessageHandler): Promise<void> {
    if (topic.startsWith('channel:')) return new Promise(() => undefined);
    return super.subscribe(topic, handler);
  }
}

describe('a session in a cluster (SPEC 14.4)', () => {
  it('holds what is written after a join until the channel subscription is confirmed, at most 2 s, counted past that', async () => {
    const node = await startRiverside({ transport: new SilentChannelTransport(new MemoryBus(), 'silent') }, [ClusterNodeHandler]);
    try {
      const client = await node.connect('/', { query: { user: 'ida' } });
      const stats = node.app.get(RiversideStats);
      const started = Date.now();
      client.send({ join: 'quiet' });
      expect(await client.expectMessage(4000)).toEqual({ joined: 'quiet' });
      const held = Date.now() - started;
      expect(held).toBeGreaterThanOrEqual(1900);
      expect(held).toBeLessThan(3000);
      expect(stats.transportErrors).toBe(1);
      expect(node.logger.errors().join('\n')).toContain('waiting for the subscription to channel:quiet: not confirmed within 2000 ms');
    } finally {
      await node.close();
    }
  });

  it('runs @OnInit only once other nodes can reach the session, so nothing sent after it is lost', async () => {
    const bus = new MemoryBus();
    const nodeA = await startRiverside({ transport: new MemoryBusTransport(bus, 'slow') }, [ReadyHandler]);
    const nodeB = await startRiverside({ transport: new SlowSubscribeTransport(bus, 'slow') }, [ReadyHandler]);
    try {
      const client = await nodeB.connect('/ready', { query: { user: 'hal' } });
      expect(await client.expectMessage()).toEqual({ ready: true });
      nodeA.app.get(DeliveryService).deliver({ user: 'hal' }, { first: 'message' });
      expect(await client.expectMessage()).toEqual({ first: 'message' });
    } finally {
      await nodeA.close();
      await nodeB.close();
    }
  });
});

/** Two nodes on one in-process bus (prefix "test"); it counts a node as subscribed from its topics. */
function memoryBusTransports() {
  const bus = new MemoryBus();
  const a = new MemoryBusTransport(bus, 'test');
  const b = new MemoryBusTransport(bus, 'test');
  return { bus, a, b, subscribers: (topic: string) => [a, b].filter((transport) => transport.topics.includes(topic)).length };
}

runClusterDeliveryContract('the in-process MemoryBus', memoryBusTransports);

describe('delivery across nodes through the cluster transport (in-process bus)', () => {
  const cluster = twoNodes(memoryBusTransports);

  it('subscribes a node only to the users and channels it has sessions for, never per session, and unsubscribes when the last leaves', async () => {
    const { a: transportA, b: transportB } = cluster.transports;
    // Besides its sessions' topics, every node listens on the shared presence topic and on its
    // own, where state transfers for it arrive (SPEC 9.3).
    const presenceTopics = (node: RunningApp) => ['presence:cluster', `presence:${node.app.get(PresenceService).nodeId}`].sort();
    const [onlyPresenceA, onlyPresenceB] = [presenceTopics(cluster.nodeA), presenceTopics(cluster.nodeB)];
    expect(transportA.topics.sort()).toEqual(onlyPresenceA);
    const client = await cluster.nodeA.connect('/', { query: { user: 'fay', sid: 's1' } });
    const sibling = await cluster.nodeA.connect('/', { query: { user: 'fay', sid: 's2' } });
    await join(client, 'lobby');
    expect(transportA.topics.sort()).toEqual(['channel:lobby', ...onlyPresenceA, 'user:fay']);
    await sibling.close();
    expect(transportB.topics.sort()).toEqual(onlyPresenceB);
    await client.close();
    await eventually(() => expect(transportA.topics.sort()).toEqual(onlyPresenceA));
  });

  it('delivers what an external publisher puts on ext:user:<id> as a text frame', async () => {
    const onB = await cluster.nodeB.connect('/', { query: { user: '42' } });
    await cluster.subscribed('user:42');
    cluster.transports.bus.publish('test:ext:user:42', '{"hello":1}');
    const frame = await onB.expectFrame();
    expect(frame.isBinary).toBe(false);
    expect(frame.data.toString()).toBe('{"hello":1}');
  });

  it('rejects, counts and logs once what is not a Riverside message on a node-to-node topic; the session is untouched', async () => {
    const { nodeB } = cluster;
    const onB = await nodeB.connect('/', { query: { user: '43' } });
    await cluster.subscribed('user:43');
    cluster.transports.bus.publish('test:user:43', '{"hello":1}');
    cluster.transports.bus.publish('test:user:43', Buffer.from([0xff, 0x01, 0x02, 0x00]));
    const stats = nodeB.app.get(RiversideStats);
    await eventually(() => expect(stats.rejectedClusterMessages).toBe(2));
    await onB.expectNoMessage(100);
    const logged = [...cluster.nodeA.logger.errors(), ...nodeB.logger.errors()].filter((line) => line.includes('(rejected)'));
    expect(logged).toHaveLength(1);
    onB.send({ join: 'still-open' });
    expect(await onB.expectMessage()).toEqual({ joined: 'still-open' });
  });

  it('keeps delivering locally when publishing fails, and counts the failure', async () => {
    const { nodeA, nodeB } = cluster;
    const local = await nodeA.connect('/', { query: { user: 'gus' } });
    await cluster.transports.a.close(); // publish now rejects, as with a broker that is down
    expect(nodeA.app.get(DeliveryService).deliver({ user: 'gus' }, { still: 'here' })).toBe(1);
    expect(await local.expectMessage()).toEqual({ still: 'here' });
    await eventually(() => expect(nodeA.app.get(RiversideStats).transportErrors).toBe(1));
    // Nest's Logger is process-wide: with two apps in one process the last one's logger records.
    const logged = [...nodeA.logger.errors(), ...nodeB.logger.errors()].join('\n');
    expect(logged).toContain('Cluster transport failed publishing to user:gus');
  });

  it('counts every transport failure but logs a burst of them once, so an outage cannot flood the log', async () => {
    const { nodeA, nodeB } = cluster;
    await nodeA.connect('/', { query: { user: 'ivy' } });
    await cluster.transports.a.close();
    const delivery = nodeA.app.get(DeliveryService);
    for (let i = 0; i < 10; i++) delivery.deliver({ user: 'ivy' }, { n: i });
    await eventually(() => expect(nodeA.app.get(RiversideStats).transportErrors).toBe(10));
    const failures = [...nodeA.logger.errors(), ...nodeB.logger.errors()].filter((line) =>
      line.startsWith('Cluster transport failed'),
    );
    expect(failures).toHaveLength(1);
  });
});

describe('the bridge for other services (SPEC 9.4, seed 004)', () => {
  let bus: MemoryBus;
  let nodes: RunningApp[] = [];
  afterEach(async () => {
    for (const node of nodes.splice(0)) await node.close();
  });

  async function cluster(): Promise<[RunningApp, RunningApp]> {
    bus = new MemoryBus();
    nodes = [
      await startRiverside({ bridge: true, transport: new MemoryBusTransport(bus, 'br') }, [ClusterNodeHandler]),
      await startRiverside({ bridge: true, transport: new MemoryBusTransport(bus, 'br') }, [ClusterNodeHandler]),
    ];
    return nodes as [RunningApp, RunningApp];
  }

  it('delivers the data of a {"recipients", "data"} envelope to every recipient, on whichever node', async () => {
    const [a, b] = await cluster();
    const ann = await a.connect('/', { query: { user: 'ann' } });
    const bob = await b.connect('/', { query: { user: '7' } });
    const outsider = await b.connect('/', { query: { user: 'cyd' } });
    bus.publish('br:bridge', JSON.stringify({ recipients: ['ann', 7, 'nobody'], data: { notice: 'hello' } }));
    expect(await ann.expectMessage()).toEqual({ notice: 'hello' });
    expect(await bob.expectMessage()).toEqual({ notice: 'hello' });
    await outsider.expectNoMessage(100);
  });

  it('counts and ignores an envelope of the wrong shape', async () => {
    const [a] = await cluster();
    const ann = await a.connect('/', { query: { user: 'ann' } });
    bus.publish('br:bridge', '{"to":["ann"],"data":1}');
    bus.publish('br:bridge', 'not json');
    await eventually(() => expect(a.app.get(RiversideStats).transportErrors).toBe(2));
    await ann.expectNoMessage(50);
  });

  it('needs a cluster transport: bridge with the local transport fails the boot', async () => {
    await expect(startRiverside({ bridge: true }, [ClusterNodeHandler])).rejects.toThrow(
      'RiversideModule: invalid option "bridge": expected a cluster transport (RedisTransport, NatsTransport...) to listen on; the local transport has none, got true.',
    );
  });
});
