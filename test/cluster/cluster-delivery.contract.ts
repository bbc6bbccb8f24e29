import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type AuthRequest,
  DeliveryService,
  EncodeError,
  Frame,
  MessagePackCodec,
  OnAuthenticate,
  OnInfo,
  OnMessage,
  OnTerminate,
  RiversideHandler,
  type RiversideTransport,
  type Session,
  type TerminateReason,
} from 'nestjs-riverside';
import type { TestClient } from 'nestjs-riverside/testing';
import { eventually, type RunningApp, startRiverside } from '../support/riverside-app.js';

/** How the sessions of ClusterNodeHandler ended, in order, since the last twoNodes() test began. */
const terminations: TerminateReason[] = [];

/** `?user=<id>&sid=<id>`; `{ join }` joins a channel; infos are echoed as `{ info }`. */
@RiversideHandler()
export class ClusterNodeHandler {
  @OnAuthenticate()
  authenticate(req: AuthRequest) {
    return { userId: String(req.queries.user), sessionId: typeof req.queries.sid === 'string' ? req.queries.sid : undefined };
  }

  @OnMessage()
  onMessage(message: { join?: string }, session: Session) {
    if (!message.join) return undefined;
    session.join(message.join);
    return { joined: message.join };
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

/** ClusterNodeHandler's twin on `/mp`, speaking binary MessagePack. */
@RiversideHandler({ path: '/mp', codec: MessagePackCodec })
export class MessagePackNodeHandler extends ClusterNodeHandler {}

/** Joins `channel` through ClusterNodeHandler, and waits for its answer. */
export async function join(client: TestClient, channel: string): Promise<void> {
  client.send({ join: channel });
  expect(await client.expectMessage()).toEqual({ joined: channel });
}

/** Two nodes' transports on one broker and one prefix, fresh for each test. */
export interface ClusterTransports {
  readonly a: RiversideTransport;
  readonly b: RiversideTransport;
  /** How many of the two nodes the broker has subscribed to `topic` (an unprefixed topic, e.g. `user:42`). */
  subscribers(topic: string): number | Promise<number>;
}

/** The two nodes of the running test. */
export interface TwoNodes<T extends ClusterTransports> {
  readonly transports: T;
  readonly nodeA: RunningApp;
  readonly nodeB: RunningApp;
  /** Waits until `count` nodes are subscribed to `topic` on the broker (0: until none is). */
  subscribed(topic: string, count?: number): Promise<void>;
}

/**
 * Registers, in the enclosing describe, a beforeEach that starts two Nest apps with
 * ClusterNodeHandler on fresh transports from `createTransports` (node A on `a`, node B on
 * `b`), and an afterEach that closes them. Read the nodes inside tests only.
 */
export function twoNodes<T extends ClusterTransports>(createTransports: () => T | Promise<T>): TwoNodes<T> {
  let transports: T | undefined;
  let nodeA: RunningApp | undefined;
  let nodeB: RunningApp | undefined;
  beforeEach(async () => {
    terminations.length = 0;
    transports = await createTransports();
    // Presence heartbeats (presence-*.e2e-spec.ts) are spaced out of these tests' way: some count
    // transport failures, and a heartbeat on a closed transport is one.
    nodeA = await startRiverside({ transport: transports.a, presenceHeartbeat: 60_000 }, [ClusterNodeHandler, MessagePackNodeHandler]);
    nodeB = await startRiverside({ transport: transports.b, presenceHeartbeat: 60_000 }, [ClusterNodeHandler, MessagePackNodeHandler]);
  });
  afterEach(async () => {
    await nodeA?.close();
    await nodeB?.close();
    transports = nodeA = nodeB = undefined;
  });
  const started = <V>(value: V | undefined): V => {
    if (value === undefined) throw new Error('twoNodes(): the nodes exist only while a test runs');
    return value;
  };
  return {
    get transports() {
      return started(transports);
    },
    get nodeA() {
      return started(nodeA);
    },
    get nodeB() {
      return started(nodeB);
    },
    subscribed: (topic, count = 1) =>
      eventually(async () => expect(await started(transports).subscribers(topic)).toBe(count)),
  };
}

/**
 * What delivery across nodes must do on every cluster transport (SPEC 9.1, 9.2, 14.4): two Nest
 * apps in one process, on the in-process bus, Redis and NATS alike. `name` says which.
 */
export function runClusterDeliveryContract(name: string, createTransports: () => ClusterTransports | Promise<ClusterTransports>): void {
  describe(`two Nest apps on ${name} (cluster delivery contract)`, () => {
    const cluster = twoNodes(createTransports);

    it('delivers to a user connected to another node; deliver() counts only local sockets', async () => {
      const { nodeA, nodeB } = cluster;
      const onB = await nodeB.connect('/', { query: { user: 'ann' } });
      await cluster.subscribed('user:ann');
      expect(nodeA.app.get(DeliveryService).deliver({ user: 'ann' }, { hello: 'from A' })).toBe(0);
      expect(await onB.expectMessage()).toEqual({ hello: 'from A' });
    });

    it('sends a session on another node the very bytes a local session gets, JSON and MessagePack, whatever plain data or structure the message holds', async () => {
      const { nodeA, nodeB } = cluster;
      const msgpack = new MessagePackCodec();
      const jsonA = await nodeA.connect('/', { query: { user: 'same' } });
      const jsonB = await nodeB.connect('/', { query: { user: 'same' } });
      const packA = await nodeA.connect('/mp', { query: { user: 'same' }, codec: msgpack });
      const packB = await nodeB.connect('/mp', { query: { user: 'same' }, codec: msgpack });
      await cluster.subscribed('user:same', 2);
      const shared = { id: 7 };
      const messages = [
        { text: 'héllo ✓ 😀', n: [0, -1, 2 ** 31, 1.5, -0, NaN], nested: { list: [[], {}, null], skipped: undefined }, a: shared, b: shared },
        Object.assign(Object.create(null), { bare: true }),
        ['top', 'level', 1],
        { at: new Date(0), tags: new Map([['a', 1]]), 3: 'index key' },
      ];
      for (const message of messages) {
        nodeA.app.get(DeliveryService).deliver({ user: 'same' }, message);
        for (const [local, remote] of [[jsonA, jsonB], [packA, packB]]) {
          const [here, there] = [await local.expectFrame(), await remote.expectFrame()];
          expect(there.data.equals(here.data)).toBe(true);
        }
      }
    });

    it('delivers to every session of a user spread over both nodes exactly once, its own node served locally', async () => {
      const { nodeA, nodeB } = cluster;
      const onA = await nodeA.connect('/', { query: { user: 'bob' } });
      const onB = await nodeB.connect('/', { query: { user: 'bob' } });
      await cluster.subscribed('user:bob', 2);
      expect(nodeA.app.get(DeliveryService).deliver({ user: 'bob' }, { n: 1 })).toBe(1);
      expect(await onA.expectMessage()).toEqual({ n: 1 });
      expect(await onB.expectMessage()).toEqual({ n: 1 });
      await onA.expectNoMessage(150);
      await onB.expectNoMessage(0);
    });

    it('broadcasts to channel members on both nodes, each once, the sender node served locally, and to nobody else', async () => {
      const { nodeA, nodeB } = cluster;
      const members = [
        await nodeA.connect('/', { query: { user: 'a1' } }),
        await nodeA.connect('/', { query: { user: 'a2' } }),
        await nodeB.connect('/', { query: { user: 'b1' } }),
        await nodeB.connect('/', { query: { user: 'b2' } }),
      ];
      const outsider = await nodeB.connect('/', { query: { user: 'b3' } });
      for (const member of members) await join(member, 'room');
      await cluster.subscribed('channel:room', 2);
      expect(nodeA.app.get(DeliveryService).deliver({ channel: 'room' }, { say: 'hi' })).toBe(2);
      for (const member of members) expect(await member.expectMessage()).toEqual({ say: 'hi' });
      for (const member of members) await member.expectNoMessage(100);
      await outsider.expectNoMessage(0);
    });

    it('reaches one session on another node by [userId, sessionId], ids with dots included: delivers to it, hands it an info, closes it, and leaves its sibling alone', async () => {
      const { nodeA, nodeB } = cluster;
      const target = await nodeB.connect('/', { query: { user: 'cy.z', sid: 'phone.1' } });
      const sibling = await nodeB.connect('/', { query: { user: 'cy.z', sid: 'laptop' } });
      // A session target rides on its user's topic.
      await cluster.subscribed('user:cy.z');
      const delivery = nodeA.app.get(DeliveryService);
      delivery.deliver({ session: ['cy.z', 'phone.1'] }, 'only you');
      expect(await target.expectMessage()).toBe('only you');
      delivery.info({ session: ['cy.z', 'phone.1'] }, { refresh: true });
      expect(await target.expectMessage()).toEqual({ info: { refresh: true } });
      delivery.close({ session: ['cy.z', 'phone.1'] }, 4001, 'kicked');
      expect(await target.expectClose(4001)).toEqual({ code: 4001, reason: 'kicked' });
      await eventually(() => expect(terminations).toEqual(['stop']));
      await sibling.expectNoMessage(150);
    });

    it('hands an info for a user to @OnInfo on another node', async () => {
      const { nodeA, nodeB } = cluster;
      const onB = await nodeB.connect('/', { query: { user: 'di' } });
      await cluster.subscribed('user:di');
      expect(nodeA.app.get(DeliveryService).info({ user: 'di' }, { refresh: true })).toBe(0);
      expect(await onB.expectMessage()).toEqual({ info: { refresh: true } });
    });

    it("closes a user's sessions on another node with the given code; their terminate reason is stop", async () => {
      const { nodeA, nodeB } = cluster;
      const onB = await nodeB.connect('/', { query: { user: 'ed' } });
      await cluster.subscribed('user:ed');
      nodeA.app.get(DeliveryService).close({ user: 'ed' }, 4001, 'kicked');
      expect(await onB.expectClose(4001)).toEqual({ code: 4001, reason: 'kicked' });
      await eventually(() => expect(terminations).toEqual(['stop']));
    });

    it("encodes a delivery with each session's own codec on every node: MessagePack and JSON clients on both nodes", async () => {
      const { nodeA, nodeB } = cluster;
      const msgpack = new MessagePackCodec();
      const clients = {
        jsonA: await nodeA.connect('/', { query: { user: 'jo' } }),
        packA: await nodeA.connect('/mp', { query: { user: 'pa' }, codec: msgpack }),
        jsonB: await nodeB.connect('/', { query: { user: 'jb' } }),
        packB: await nodeB.connect('/mp', { query: { user: 'pb' }, codec: msgpack }),
      };
      for (const client of Object.values(clients)) await join(client, 'mixed');
      await cluster.subscribed('channel:mixed', 2);
      const message = { text: 'hi', n: 1, bytes: Buffer.from([1, 2, 3]) };
      expect(nodeA.app.get(DeliveryService).deliver({ channel: 'mixed' }, message)).toBe(2);
      for (const client of [clients.packA, clients.packB]) {
        const frame = await client.expectFrame();
        expect(frame.isBinary).toBe(true);
        expect(msgpack.decode(frame.data)).toEqual({ text: 'hi', n: 1, bytes: Buffer.from([1, 2, 3]) });
      }
      for (const client of [clients.jsonA, clients.jsonB]) {
        const frame = await client.expectFrame();
        expect(frame.isBinary).toBe(false);
        expect(JSON.parse(frame.data.toString())).toEqual({ text: 'hi', n: 1, bytes: { type: 'Buffer', data: [1, 2, 3] } });
      }
      // What only MessagePack can encode reaches the MessagePack sessions of both nodes.
      expect(nodeA.app.get(DeliveryService).deliver({ user: 'pb' }, { big: 2n ** 60n })).toBe(0);
      expect(msgpack.decode((await clients.packB.expectFrame()).data)).toEqual({ big: 2n ** 60n });
      // A raw Frame crosses byte for byte, whatever the codec.
      nodeA.app.get(DeliveryService).deliver({ user: 'pb' }, Frame.text('raw'));
      const raw = await clients.packB.expectFrame();
      expect([raw.isBinary, raw.data.toString()]).toEqual([false, 'raw']);
    });

    it('throws an EncodeError before writing anything when the message cannot cross nodes, and sends nothing', async () => {
      const { nodeA, nodeB } = cluster;
      const local = await nodeA.connect('/', { query: { user: 'enc' } });
      const remote = await nodeB.connect('/', { query: { user: 'enc' } });
      await cluster.subscribed('user:enc', 2);
      expect(() => nodeA.app.get(DeliveryService).deliver({ user: 'enc' }, { callback() {} })).toThrow(EncodeError);
      await local.expectNoMessage(100);
      await remote.expectNoMessage(0);
    });

    it('hands an info to @OnInfo on another node with its structure: Date, Map and BigInt survive', async () => {
      const { nodeA, nodeB } = cluster;
      const received: unknown[] = [];
      const onB = await nodeB.connect('/mp', { query: { user: 'struct' }, codec: new MessagePackCodec() });
      await cluster.subscribed('user:struct');
      const info = { at: new Date(0), tags: new Map([['a', 1]]), big: 7n };
      nodeA.app.get(DeliveryService).info({ user: 'struct' }, info);
      received.push(await onB.expectMessage());
      // The handler answers { info } with MessagePack, which keeps the Date and BigInt (a Map becomes an object).
      expect(received).toEqual([{ info: { at: new Date(0), tags: { a: 1 }, big: 7n } }]);
    });

    it('keeps the order of many deliveries from one node to a user on another (SPEC 14.4)', async () => {
      const { nodeA, nodeB } = cluster;
      const onB = await nodeB.connect('/', { query: { user: 'ord' } });
      await cluster.subscribed('user:ord');
      const delivery = nodeA.app.get(DeliveryService);
      for (let n = 0; n < 200; n++) delivery.deliver({ user: 'ord' }, { n });
      expect(await onB.expectMessages(200)).toEqual(Array.from({ length: 200 }, (_, n) => ({ n })));
    });

    it('unsubscribes a node from the broker when the last local session of a topic leaves; never subscribes per session', async () => {
      const client = await cluster.nodeB.connect('/', { query: { user: 'fay', sid: 's1' } });
      await join(client, 'lobby');
      await cluster.subscribed('channel:lobby');
      await cluster.subscribed('user:fay');
      expect(await cluster.transports.subscribers('session:fay/s1')).toBe(0);
      await client.close();
      await cluster.subscribed('user:fay', 0);
      await cluster.subscribed('channel:lobby', 0);
    });
  });
}
