import { afterEach, describe, expect, it } from 'vitest';
import {
  type AuthRequest,
  OnAuthenticate,
  OnMessage,
  type PresenceEvent,
  PresenceService,
  RiversideError,
  RiversideHandler,
  RiversideStats,
  type RiversideTransport,
  type Session,
  type TransportMessageHandler,
} from 'nestjs-riverside';
import { MemoryBus, MemoryBusTransport, type TestClient } from 'nestjs-riverside/testing';
import { eventually, type RunningApp, startRiverside } from '../support/riverside-app.js';

// SPEC 9.3 / 16.4 on the in-process bus: several Nest apps in this process are the nodes. Fast
// heartbeats; the same tracker runs on Redis and NATS (presence-processes.e2e-spec.ts).
const HEARTBEAT = 50;
const TIMEOUT = 300;

/**
 * `?user=<id>&sid=<id>`; `{ join, meta }` answers `{ joined }` or the error that refused it (`big: n`:
 * a meta of n characters, `bigint`: a meta JSON cannot carry); `{ leave }`.
 */
@RiversideHandler()
class PresenceNodeHandler {
  @OnAuthenticate()
  authenticate(req: AuthRequest) {
    return { userId: String(req.queries.user), sessionId: typeof req.queries.sid === 'string' ? req.queries.sid : undefined };
  }

  @OnMessage()
  onMessage(message: { join?: string; meta?: unknown; big?: number; bigint?: boolean; leave?: string }, session: Session) {
    if (message.join !== undefined) {
      const meta = message.big ? { text: 'x'.repeat(message.big) } : message.bigint ? { n: 1n } : message.meta;
      try {
        session.join(message.join, meta);
        return { joined: message.join };
      } catch (error) {
        const { code, message: text } = error as RiversideError;
        return { refused: { code, message: text } };
      }
    }
    if (message.leave !== undefined) return { left: session.leave(message.leave) };
    return undefined;
  }
}

/**
 * A node's transport with a switch: while `cut`, nothing goes in or out (a partition, or a
 * process that stopped); `dropNextDelta` loses one presence delta on its way out.
 */
class SwitchableTransport implements RiversideTransport {
  cut = false;
  dropNextDelta = false;
  /** Nothing arrives on the node's own presence topic, though it is subscribed (a broker that accepts and never delivers). */
  deafToOwnTopic = false;
  /** The topic and type of every presence state this node published. */
  readonly statesSent: { topic: string; n: string }[] = [];
  constructor(readonly inner: MemoryBusTransport) {}
  connect() {
    return this.inner.connect();
  }
  async publish(topic: string, payload: Uint8Array) {
    if (this.cut) return;
    const text = Buffer.from(payload).toString();
    if (text.includes('"t":"state"')) this.statesSent.push({ topic, n: (JSON.parse(text) as { n: string }).n });
    if (this.dropNextDelta && text.includes('"t":"delta"')) {
      this.dropNextDelta = false;
      return;
    }
    return this.inner.publish(topic, payload);
  }
  subscribe(topic: string, handler: TransportMessageHandler) {
    const ownPresenceTopic = topic.startsWith('presence:') && topic !== 'presence:cluster';
    return this.inner.subscribe(topic, (payload, from) => {
      if (!this.cut && !(ownPresenceTopic && this.deafToOwnTopic)) handler(payload, from);
    });
  }
  unsubscribe(topic: string) {
    return this.inner.unsubscribe(topic);
  }
  close() {
    return this.inner.close();
  }
}

interface BusNode {
  readonly app: RunningApp;
  readonly transport: SwitchableTransport;
  readonly presence: PresenceService;
  readonly events: PresenceEvent[];
}

describe('presence on the in-process bus (SPEC 9.3)', () => {
  let nodes: BusNode[] = [];
  afterEach(async () => {
    await Promise.all(nodes.map((node) => node.app.close()));
    nodes = [];
  });

  /** `count` more nodes, on a new bus or on `bus` (to join nodes started earlier); returns every node. */
  async function startNodes(count: number, bus = new MemoryBus(), configure?: (transport: SwitchableTransport) => void): Promise<BusNode[]> {
    for (let n = 0; n < count; n++) {
      const transport = new SwitchableTransport(new MemoryBusTransport(bus));
      configure?.(transport);
      const app = await startRiverside({ transport, presenceHeartbeat: HEARTBEAT, presenceTimeout: TIMEOUT }, [PresenceNodeHandler]);
      const presence = app.app.get(PresenceService);
      const events: PresenceEvent[] = [];
      presence.on((event) => events.push(event));
      nodes.push({ app, transport, presence, events });
    }
    return nodes;
  }

  async function member(node: BusNode, userId: string, channel: string, meta?: unknown): Promise<TestClient> {
    const client = await node.app.connect('/', { query: { user: userId, sid: `${userId}-s` } });
    client.send({ join: channel, meta });
    expect(await client.expectMessage()).toEqual({ joined: channel });
    return client;
  }

  const allEvents = () => nodes.flatMap((node) => node.events);
  const userIds = async (node: BusNode, channel: string) => (await node.presence.members(channel)).members.map((m) => m.userId).sort();

  it('answers members, count, isOnline and sessionsOf cluster-wide; localMembers and localCount stay local and synchronous', async () => {
    const [a, b, c] = await startNodes(3);
    await member(a, 'ann', 'room', { nick: 'Ann' });
    await member(b, 'bob', 'room', { nick: 'Bob' });
    await member(c, 'cy', 'room');
    await member(c, 'dee', 'elsewhere');

    for (const node of nodes) {
      await eventually(async () => expect(await userIds(node, 'room')).toEqual(['ann', 'bob', 'cy']));
    }
    const answer = await a.presence.members('room');
    expect(answer.complete).toBe(true);
    expect(answer.members.find((m) => m.userId === 'bob')).toEqual({ userId: 'bob', sessionId: 'bob-s', meta: { nick: 'Bob' }, node: b.presence.nodeId });
    expect(answer.members.find((m) => m.userId === 'cy')?.meta).toBeUndefined();
    expect(await b.presence.count('room')).toEqual({ count: 3, complete: true, missingNodes: [] });
    expect(await a.presence.isOnline('dee')).toEqual({ online: true, complete: true, missingNodes: [] });
    expect(await a.presence.isOnline('nobody')).toEqual({ online: false, complete: true, missingNodes: [] });
    expect(await a.presence.sessionsOf('bob')).toEqual({
      sessions: [{ userId: 'bob', sessionId: 'bob-s', node: b.presence.nodeId }],
      complete: true,
      missingNodes: [],
    });
    expect(a.presence.localMembers('room')).toEqual([{ userId: 'ann', sessionId: 'ann-s', meta: { nick: 'Ann' }, node: a.presence.nodeId }]);
    expect(a.presence.localCount('room')).toBe(1);
  });

  it("lists every session of a user on another node as they open and close, from its deltas and from its state", async () => {
    const [a, b] = await startNodes(2);
    const open = (sessionId: string) => b.app.connect('/', { query: { user: 'kim', sid: sessionId } });
    const sessionIds = async (node: BusNode) => (await node.presence.sessionsOf('kim')).sessions.map(({ sessionId }) => sessionId).sort();
    const first = await open('k1');
    await eventually(async () => expect(await sessionIds(a)).toEqual(['k1']));
    const [second, third] = [await open('k2'), await open('k3')];
    await eventually(async () => expect(await sessionIds(a)).toEqual(['k1', 'k2', 'k3']));
    await second.close();
    await third.close();
    await eventually(async () => expect(await sessionIds(a)).toEqual(['k1']));
    const again = await open('k2');
    await eventually(async () => expect(await sessionIds(a)).toEqual(['k1', 'k2']));
    // A node started now learns them from b's state.
    const c = (await startNodes(1, a.transport.inner.bus))[2];
    await eventually(async () => expect(await sessionIds(c)).toEqual(['k1', 'k2']));
    await first.close();
    await again.close();
    for (const node of [a, c]) {
      await eventually(async () => expect(await node.presence.isOnline('kim')).toEqual({ online: false, complete: true, missingNodes: [] }));
      expect(await sessionIds(node)).toEqual([]);
    }
  });

  it('refuses a meta over maxMetaSize (1 KiB by default) or that JSON cannot carry, with a PresenceMetaError, joining nothing', async () => {
    const [a, b] = await startNodes(2);
    const client = await a.app.connect('/', { query: { user: 'ann' } });

    client.send({ join: 'room', big: 1100 });
    expect(await client.expectMessage()).toEqual({
      refused: {
        code: 'RIVERSIDE_ERR_PRESENCE_META',
        message:
          'Channel meta is 1111 bytes of JSON, more than maxMetaSize (1024): keep presence meta small (ids, a display name) or raise the maxMetaSize option',
      },
    });
    client.send({ join: 'room', bigint: true });
    expect(await client.expectMessage()).toEqual({
      refused: {
        code: 'RIVERSIDE_ERR_PRESENCE_META',
        message: 'Channel meta must be JSON-serializable (it is what presence shows of a member, on every node): Do not know how to serialize a BigInt',
      },
    });
    expect(a.presence.localMembers('room')).toEqual([]);
    client.send({ join: 'room', big: 1000 });
    expect(await client.expectMessage()).toEqual({ joined: 'room' });
    await eventually(async () => expect((await b.presence.members('room')).members).toHaveLength(1));
    expect(allEvents().map((event) => event.type)).toEqual(['join']);
    expect(a.app.app.get(RiversideStats).refusedJoins).toBe(2);
  });

  it('emits each join, meta update and leave once across the cluster, on the node of the session, with its meta', async () => {
    const [a, b] = await startNodes(2);
    const ann = await member(a, 'ann', 'room', { v: 1 });
    ann.send({ join: 'room', meta: { v: 2 } });
    await ann.expectMessage();
    ann.send({ leave: 'room' });
    await ann.expectMessage();
    const bob = await member(b, 'bob', 'room', { v: 9 });
    await bob.close();

    await eventually(() => expect(allEvents()).toHaveLength(5));
    expect(a.events).toEqual([
      { type: 'join', channel: 'room', userId: 'ann', sessionId: 'ann-s', meta: { v: 1 }, node: a.presence.nodeId },
      { type: 'update', channel: 'room', userId: 'ann', sessionId: 'ann-s', meta: { v: 2 }, node: a.presence.nodeId },
      { type: 'leave', channel: 'room', userId: 'ann', sessionId: 'ann-s', meta: { v: 2 }, node: a.presence.nodeId, reason: 'left' },
    ]);
    expect(b.events).toEqual([
      { type: 'join', channel: 'room', userId: 'bob', sessionId: 'bob-s', meta: { v: 9 }, node: b.presence.nodeId },
      { type: 'leave', channel: 'room', userId: 'bob', sessionId: 'bob-s', meta: { v: 9 }, node: b.presence.nodeId, reason: 'disconnected' },
    ]);
    await eventually(async () => expect(await userIds(a, 'room')).toEqual([]));
  });

  it('catches up through a state transfer when a delta is lost, with no extra event', async () => {
    const [a, b] = await startNodes(2);
    await member(a, 'ann', 'room');
    await eventually(async () => expect(await userIds(b, 'room')).toEqual(['ann']));
    a.transport.dropNextDelta = true;
    await member(a, 'abe', 'room');
    // The next heartbeat carries a's sequence number: b sees the gap and asks for a's state.
    await eventually(async () => expect(await userIds(b, 'room')).toEqual(['abe', 'ann']), 1000);
    expect(allEvents().map((event) => `${event.type} ${event.userId}`)).toEqual(['join ann', 'join abe']);
  });

  it("answers a request for its state on the asker's own topic, and once on the shared topic when most nodes ask in one turn", async () => {
    const [a, b] = await startNodes(2);
    await member(a, 'ann', 'room');
    const { bus } = a.transport.inner;
    // Two more nodes, played by the test: a hello or sync naming a, from node `n`, with a topic of its own (i: 1).
    const ask = (t: 'hello' | 'sync', n: string) => bus.publish('riverside:presence:cluster', JSON.stringify({ p: 1, t, n, to: a.presence.nodeId, i: 1 }));
    const [x, y] = ['x'.repeat(16), 'y'.repeat(16)];
    const topicsOfStates = async (expected: string[]) => {
      await eventually(() => expect(a.transport.statesSent.map(({ topic }) => topic)).toEqual(expected));
      a.transport.statesSent.length = 0;
    };
    // b started after a: its hello was answered on its own topic.
    await topicsOfStates([`presence:${b.presence.nodeId}`]);

    ask('hello', x);
    await topicsOfStates([`presence:${x}`]);
    ask('sync', y);
    await topicsOfStates([`presence:${y}`]);
    // a knows three nodes; two of them ask in the same turn: one state for all.
    ask('sync', x);
    ask('sync', y);
    await topicsOfStates(['presence:cluster']);
    ask('sync', x);
    await topicsOfStates([`presence:${x}`]);
  });

  it('gets the entries of the nodes before it when nothing arrives on its own topic: it asks again on the shared topic', async () => {
    const [a] = await startNodes(1);
    await member(a, 'ann', 'room');
    const c = (await startNodes(1, a.transport.inner.bus, (transport) => (transport.deafToOwnTopic = true)))[1];
    await eventually(async () => expect(await c.presence.members('room')).toMatchObject({ complete: true, members: [{ userId: 'ann' }] }));
    // Answered on c's topic (its hello, its first request) until c asked again without it.
    const topics = a.transport.statesSent.map(({ topic }) => topic);
    expect(topics.at(-1)).toBe('presence:cluster');
    expect(new Set(topics.slice(0, -1))).toEqual(new Set([`presence:${c.presence.nodeId}`]));
  });

  it('a cleanly stopped node is dropped at once; its members left once, on their own node', async () => {
    const [a, b, c] = await startNodes(3);
    await member(c, 'cy', 'room');
    await eventually(async () => expect(await userIds(a, 'room')).toEqual(['cy']));
    const closedAt = Date.now();
    await c.app.close();
    nodes = [a, b];
    for (const node of [a, b]) await eventually(async () => expect(await node.presence.members('room')).toEqual({ members: [], complete: true, missingNodes: [] }));
    expect(Date.now() - closedAt).toBeLessThan(TIMEOUT);
    expect([...a.events, ...b.events, ...c.events].filter((event) => event.type === 'leave')).toEqual([
      { type: 'leave', channel: 'room', userId: 'cy', sessionId: 'cy-s', meta: undefined, node: c.presence.nodeId, reason: 'disconnected' },
    ]);
  });

  it('a silent node is reported missing, then removed after presenceTimeout with one leave per member from the lowest live node; when it is heard again its members return with one join each', async () => {
    const [a, b, c] = await startNodes(3);
    await member(c, 'cy', 'room', { nick: 'Cy' });
    await member(a, 'ann', 'room');
    for (const node of nodes) await eventually(async () => expect(await userIds(node, 'room')).toEqual(['ann', 'cy']));
    const cId = c.presence.nodeId;

    c.transport.cut = true;
    await eventually(async () => expect(await a.presence.members('room')).toMatchObject({ complete: false, missingNodes: [cId] }));
    for (const node of [a, b]) await eventually(async () => expect(await userIds(node, 'room')).toEqual(['ann']), 2 * TIMEOUT);
    const cyEvent = { channel: 'room', userId: 'cy', sessionId: 'cy-s', meta: { nick: 'Cy' }, node: cId };
    await eventually(() => expect([...a.events, ...b.events].filter((event) => event.userId === 'cy' && event.type === 'leave')).toEqual([{ type: 'leave', ...cyEvent, reason: 'node-down' }]));
    const lowest = [a, b].sort((x, y) => (x.presence.nodeId < y.presence.nodeId ? -1 : 1))[0];
    expect(lowest.events.some((event) => event.type === 'leave' && event.userId === 'cy')).toBe(true);

    c.transport.cut = false;
    for (const node of [a, b]) await eventually(async () => expect(await node.presence.members('room')).toMatchObject({ complete: true }), 1000);
    for (const node of nodes) await eventually(async () => expect(await userIds(node, 'room')).toEqual(['ann', 'cy']), 1000);
    await new Promise((resolve) => setTimeout(resolve, 3 * HEARTBEAT));
    expect([...a.events, ...b.events].filter((event) => event.userId === 'cy')).toEqual([
      { type: 'leave', ...cyEvent, reason: 'node-down' },
      { type: 'join', ...cyEvent },
    ]);
  });

  it('with the default LocalTransport, answers from this node at once, complete, and still emits events', async () => {
    const app = await startRiverside({}, [PresenceNodeHandler]);
    try {
      const presence = app.app.get(PresenceService);
      const events: PresenceEvent[] = [];
      presence.on((event) => events.push(event));
      const client = await app.connect('/', { query: { user: 'ann', sid: 's1' } });
      client.send({ join: 'room', meta: { nick: 'A' } });
      await client.expectMessage();
      expect(await presence.members('room')).toEqual({
        members: [{ userId: 'ann', sessionId: 's1', meta: { nick: 'A' }, node: presence.nodeId }],
        complete: true,
        missingNodes: [],
      });
      await client.close();
      await eventually(() => expect(events.map((event) => event.type)).toEqual(['join', 'leave']));
      expect(await presence.isOnline('ann')).toEqual({ online: false, complete: true, missingNodes: [] });
    } finally {
      await app.close();
    }
  });
});
