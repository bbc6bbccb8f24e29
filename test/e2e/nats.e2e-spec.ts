import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type AuthRequest,
  DeliveryService,
  OnAuthenticate,
  OnInfo,
  OnMessage,
  OnTerminate,
  RiversideHandler,
  type Session,
  type TerminateReason,
} from 'nestjs-riverside';
import type { TestClient } from 'nestjs-riverside/testing';
import { NATS_URL, natsAvailable, TrackedNatsTransport, uniquePrefix } from '../support/nats.js';
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

const enabled = await natsAvailable();

describe.runIf(enabled)('two Nest apps in one process on a real NATS server (SPEC 9.1, 9.4)', () => {
  let prefix: string;
  let transportA: TrackedNatsTransport;
  let transportB: TrackedNatsTransport;
  let nodeA: RunningApp;
  let nodeB: RunningApp;
  let publisher: NatsConnection;

  beforeAll(async () => {
    publisher = await connect({ servers: NATS_URL });
  });
  afterAll(async () => {
    await publisher?.close();
  });

  beforeEach(async () => {
    terminations.length = 0;
    prefix = uniquePrefix('e2e');
    transportA = new TrackedNatsTransport({ servers: NATS_URL, prefix });
    transportB = new TrackedNatsTransport({ servers: NATS_URL, prefix });
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

  it('delivers what `nats pub <prefix>.user.42` publishes to user 42 as a text frame', async () => {
    const onB = await nodeB.connect('/', { query: { user: '42' } });
    const other = await nodeB.connect('/', { query: { user: '43' } });
    await eventually(() => expect(transportB.subscribed).toContain('user:42'));
    publisher.publish(`${prefix}.user.42`, '{"hello":1}');
    const frame = await onB.expectFrame();
    expect(frame.isBinary).toBe(false);
    expect(frame.data.toString()).toBe('{"hello":1}');
    publisher.publish(`${prefix}.user.42`, Uint8Array.from([0xc3, 0x28]));
    const binary = await onB.expectFrame();
    expect(binary.isBinary).toBe(true);
    expect([...binary.data]).toEqual([0xc3, 0x28]);
    await other.expectNoMessage(100);
  });

  it('reaches a channel whose name needs escaping, through the escaped subject', async () => {
    const member = await nodeB.connect('/', { query: { user: 'm' } });
    await join(member, 'room.1 *');
    await eventually(() => expect(transportB.subscribed).toContain('channel:room.1 *'));
    publisher.publish(`${prefix}.channel.room%2E1%20%2A`, 'escaped');
    expect((await member.expectFrame()).data.toString()).toBe('escaped');
  });

  it('reaches every session of a user on both nodes exactly once', async () => {
    const onA = await nodeA.connect('/', { query: { user: 'bob' } });
    const onB = await nodeB.connect('/', { query: { user: 'bob' } });
    await eventually(() => expect(transportB.subscribed).toContain('user:bob'));
    expect(nodeA.app.get(DeliveryService).deliver({ user: 'bob' }, { n: 1 })).toBe(1);
    expect(await onA.expectMessage()).toEqual({ n: 1 });
    expect(await onB.expectMessage()).toEqual({ n: 1 });
    await onA.expectNoMessage(150);
    await onB.expectNoMessage(0);
  });

  it('broadcasts to channel members on both nodes, each once', async () => {
    const members = [
      await nodeA.connect('/', { query: { user: 'a1' } }),
      await nodeB.connect('/', { query: { user: 'b1' } }),
      await nodeB.connect('/', { query: { user: 'b2' } }),
    ];
    const outsider = await nodeB.connect('/', { query: { user: 'b3' } });
    for (const member of members) await join(member, 'room');
    await eventually(() => expect(transportB.subscribed).toContain('channel:room'));
    expect(nodeA.app.get(DeliveryService).deliver({ channel: 'room' }, { say: 'hi' })).toBe(1);
    for (const member of members) expect(await member.expectMessage()).toEqual({ say: 'hi' });
    for (const member of members) await member.expectNoMessage(100);
    await outsider.expectNoMessage(0);
  });

  it('reaches one session on the other node by [userId, sessionId], ids with dots included', async () => {
    const target = await nodeB.connect('/', { query: { user: 'cy.z', sid: 'phone.1' } });
    const sibling = await nodeB.connect('/', { query: { user: 'cy.z', sid: 'laptop' } });
    await eventually(() => expect(transportB.subscribed).toContain('session:cy.z/phone.1'));
    nodeA.app.get(DeliveryService).deliver({ session: ['cy.z', 'phone.1'] }, 'only you');
    expect(await target.expectMessage()).toBe('only you');
    await sibling.expectNoMessage(150);
  });

  it('hands an info to @OnInfo on the other node', async () => {
    const onB = await nodeB.connect('/', { query: { user: 'di' } });
    await eventually(() => expect(transportB.subscribed).toContain('user:di'));
    expect(nodeA.app.get(DeliveryService).info({ user: 'di' }, { refresh: true })).toBe(0);
    expect(await onB.expectMessage()).toEqual({ info: { refresh: true } });
  });

  it('closes sessions on the other node with the given code', async () => {
    const onB = await nodeB.connect('/', { query: { user: 'ed' } });
    await eventually(() => expect(transportB.subscribed).toContain('user:ed'));
    nodeA.app.get(DeliveryService).close({ user: 'ed' }, 4001, 'kicked');
    expect(await onB.expectClose(4001)).toEqual({ code: 4001, reason: 'kicked' });
    await eventually(() => expect(terminations).toContain('stop'));
  });

  it('keeps the order of many deliveries from one node to a user on the other (SPEC 14.4)', async () => {
    const onB = await nodeB.connect('/', { query: { user: 'fay' } });
    await eventually(() => expect(transportB.subscribed).toContain('user:fay'));
    const delivery = nodeA.app.get(DeliveryService);
    for (let n = 0; n < 200; n++) delivery.deliver({ user: 'fay' }, { n });
    expect(await onB.expectMessages(200)).toEqual(Array.from({ length: 200 }, (_, n) => ({ n })));
  });
});
