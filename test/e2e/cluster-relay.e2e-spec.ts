import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type AuthRequest,
  DeliveryService,
  OnAuthenticate,
  OnInfo,
  OnInit,
  OnMessage,
  OnTerminate,
  RiversideHandler,
  RiversideStats,
  type Session,
  type TerminateReason,
} from 'nestjs-riverside';
import { MemoryBus, MemoryBusTransport, type TestClient } from 'nestjs-riverside/testing';
import { eventually, type RunningApp, startRiverside } from '../support/riverside-app.js';

const terminations: TerminateReason[] = [];

/** `?user=<id>&sid=<id>`; `{ join }` joins a channel; infos are echoed as `{ info }`. */
@RiversideHandler()
class NodeHandler {
  @OnAuthenticate()
  authenticate(req: AuthRequest) {
    return { userId: String(req.queries.user), sessionId: typeof req.queries.sid === 'string' ? req.queries.sid : undefined };
  }

  @OnMessage()
  onMessage(message: { join?: string }, session: Session) {
    if (message.join) {
      session.join(message.join);
      return { joined: message.join };
    }
    return undefined;
  }

  @OnInfo()
  onInfo(info: unknown) {
    return { info };
  }

  @OnTerminate()
  onTerminate(reason: TerminateReason) {
    terminations.push(reason);
  }
}

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
  override async subscribe(topic: string, handler: (payload: Uint8Array) => void): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 300));
    return super.subscribe(topic, handler);
  }
}

describe('a session in a cluster (SPEC 14.4)', () => {
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

describe('delivery across nodes through the cluster transport (in-process bus)', () => {
  let bus: MemoryBus;
  let transportA: MemoryBusTransport;
  let transportB: MemoryBusTransport;
  let nodeA: RunningApp;
  let nodeB: RunningApp;

  beforeEach(async () => {
    terminations.length = 0;
    bus = new MemoryBus();
    transportA = new MemoryBusTransport(bus, 'test');
    transportB = new MemoryBusTransport(bus, 'test');
    nodeA = await startRiverside({ transport: transportA }, [NodeHandler]);
    nodeB = await startRiverside({ transport: transportB }, [NodeHandler]);
  });
  afterEach(async () => {
    await nodeA?.close();
    await nodeB?.close();
  });

  async function join(client: TestClient, channel: string) {
    client.send({ join: channel });
    expect(await client.expectMessage()).toEqual({ joined: channel });
  }

  it('reaches a user connected to another node; deliver() counts only local sockets', async () => {
    const onB = await nodeB.connect('/', { query: { user: 'ann' } });
    await eventually(() => expect(transportB.topics).toContain('user:ann'));
    expect(nodeA.app.get(DeliveryService).deliver({ user: 'ann' }, { hello: 'from A' })).toBe(0);
    expect(await onB.expectMessage()).toEqual({ hello: 'from A' });
  });

  it('reaches every session of a user spread over both nodes exactly once', async () => {
    const onA = await nodeA.connect('/', { query: { user: 'bob' } });
    const onB = await nodeB.connect('/', { query: { user: 'bob' } });
    await eventually(() => expect(transportB.topics).toContain('user:bob'));
    expect(nodeA.app.get(DeliveryService).deliver({ user: 'bob' }, { n: 1 })).toBe(1);
    expect(await onA.expectMessage()).toEqual({ n: 1 });
    expect(await onB.expectMessage()).toEqual({ n: 1 });
    await onA.expectNoMessage(150);
    await onB.expectNoMessage(0);
  });

  it('broadcasts to channel members on both nodes, each once, the sender node served locally', async () => {
    const members = [
      await nodeA.connect('/', { query: { user: 'a1' } }),
      await nodeA.connect('/', { query: { user: 'a2' } }),
      await nodeB.connect('/', { query: { user: 'b1' } }),
    ];
    const outsider = await nodeB.connect('/', { query: { user: 'b2' } });
    for (const member of members) await join(member, 'room');
    await eventually(() => expect(transportB.topics).toContain('channel:room'));
    expect(nodeA.app.get(DeliveryService).deliver({ channel: 'room' }, { say: 'hi' })).toBe(2);
    for (const member of members) expect(await member.expectMessage()).toEqual({ say: 'hi' });
    for (const member of members) await member.expectNoMessage(100);
    await outsider.expectNoMessage(0);
  });

  it('reaches one session on another node by [userId, sessionId]', async () => {
    const target = await nodeB.connect('/', { query: { user: 'cy', sid: 'phone' } });
    const sibling = await nodeB.connect('/', { query: { user: 'cy', sid: 'laptop' } });
    await eventually(() => expect(transportB.topics).toContain('session:cy/phone'));
    nodeA.app.get(DeliveryService).deliver({ session: ['cy', 'phone'] }, 'only you');
    expect(await target.expectMessage()).toBe('only you');
    await sibling.expectNoMessage(150);
  });

  it('hands an info to @OnInfo on another node', async () => {
    const onB = await nodeB.connect('/', { query: { user: 'di' } });
    await eventually(() => expect(transportB.topics).toContain('user:di'));
    expect(nodeA.app.get(DeliveryService).info({ user: 'di' }, { refresh: true })).toBe(0);
    expect(await onB.expectMessage()).toEqual({ info: { refresh: true } });
  });

  it('closes sessions on another node with the given code; their terminate reason is stop', async () => {
    const onB = await nodeB.connect('/', { query: { user: 'ed' } });
    await eventually(() => expect(transportB.topics).toContain('user:ed'));
    nodeA.app.get(DeliveryService).close({ user: 'ed' }, 4001, 'kicked');
    expect(await onB.expectClose(4001)).toEqual({ code: 4001, reason: 'kicked' });
    await eventually(() => expect(terminations).toContain('stop'));
  });

  it('subscribes a node only to topics it has sessions for, and unsubscribes when the last leaves', async () => {
    expect(transportA.topics).toEqual([]);
    const client = await nodeA.connect('/', { query: { user: 'fay', sid: 's1' } });
    await join(client, 'lobby');
    expect(transportA.topics.sort()).toEqual(['channel:lobby', 'session:fay/s1', 'user:fay']);
    expect(transportB.topics).toEqual([]);
    await client.close();
    await eventually(() => expect(transportA.topics).toEqual([]));
  });

  it('delivers what an external publisher puts on a user topic as a text frame', async () => {
    const onB = await nodeB.connect('/', { query: { user: '42' } });
    await eventually(() => expect(transportB.topics).toContain('user:42'));
    bus.publish('test:user:42', '{"hello":1}');
    const frame = await onB.expectFrame();
    expect(frame.isBinary).toBe(false);
    expect(frame.data.toString()).toBe('{"hello":1}');
  });

  it('keeps delivering locally when publishing fails, and counts the failure', async () => {
    const local = await nodeA.connect('/', { query: { user: 'gus' } });
    await transportA.close(); // publish now rejects, as with a broker that is down
    expect(nodeA.app.get(DeliveryService).deliver({ user: 'gus' }, { still: 'here' })).toBe(1);
    expect(await local.expectMessage()).toEqual({ still: 'here' });
    await eventually(() => expect(nodeA.app.get(RiversideStats).transportErrors).toBe(1));
    // Nest's Logger is process-wide: with two apps in one process the last one's logger records.
    const logged = [...nodeA.logger.errors(), ...nodeB.logger.errors()].join('\n');
    expect(logged).toContain('Cluster transport failed publishing to user:gus');
  });

  it('counts every transport failure but logs a burst of them once, so an outage cannot flood the log', async () => {
    await nodeA.connect('/', { query: { user: 'ivy' } });
    await transportA.close();
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
      await startRiverside({ bridge: true, transport: new MemoryBusTransport(bus, 'br') }, [NodeHandler]),
      await startRiverside({ bridge: true, transport: new MemoryBusTransport(bus, 'br') }, [NodeHandler]),
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
    await expect(startRiverside({ bridge: true }, [NodeHandler])).rejects.toThrow(
      'RiversideModule: invalid option "bridge": expected a cluster transport (RedisTransport, NatsTransport...) to listen on; the local transport has none, got true.',
    );
  });
});
