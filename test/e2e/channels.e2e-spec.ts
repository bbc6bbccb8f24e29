import 'reflect-metadata';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AuthError,
  type AuthRequest,
  DeliveryService,
  OnAuthenticate,
  OnInit,
  OnMessage,
  OnTerminate,
  PresenceService,
  RiversideHandler,
  type Session,
} from 'nestjs-riverside';
import type { TestClient } from 'nestjs-riverside/testing';
import { eventually, type RunningApp, startRiverside } from '../support/riverside-app.js';

type Command =
  | { join: string; meta?: unknown }
  | { leave: string | null }
  | { channels: true }
  | { say: string; to: string };

/**
 * Identity from the query (?user=ann). Frames are commands that use the session shortcuts:
 * { join, meta } / { leave } ({ leave: null } leaves all) / { channels } / { say, to }.
 */
@RiversideHandler()
class ChannelsHandler {
  readonly sessions = new Map<string, Session>();
  readonly channelsAtTerminate = new Map<string, string[]>();
  constructor(private readonly delivery: DeliveryService) {}

  @OnAuthenticate()
  authenticate(req: AuthRequest) {
    return { userId: String(req.queries.user) };
  }

  @OnInit()
  init(session: Session) {
    this.sessions.set(session.userId, session);
  }

  @OnMessage()
  onMessage(command: Command, session: Session) {
    if ('join' in command) return { joined: session.join(command.join, command.meta), channels: session.channels() };
    if ('leave' in command) return { left: session.leave(command.leave ?? undefined), channels: session.channels() };
    if ('channels' in command) return { channels: session.channels() };
    this.delivery.deliver({ channel: command.to }, { from: session.userId, say: command.say });
    return undefined;
  }

  @OnTerminate()
  terminate(_reason: unknown, session: Session) {
    this.channelsAtTerminate.set(session.userId, session.channels());
  }

  session(userId: string): Session {
    const session = this.sessions.get(userId);
    if (!session) throw new Error(`no session for ${userId}`);
    return session;
  }
}

describe('channels through DeliveryService (SPEC 6.3)', () => {
  let app: RunningApp;
  let delivery: DeliveryService;
  let handler: ChannelsHandler;
  afterEach(() => app?.close());

  async function start(): Promise<void> {
    app = await startRiverside({}, [ChannelsHandler]);
    delivery = app.app.get(DeliveryService);
    handler = app.app.get(ChannelsHandler);
  }
  const connect = (user: string): Promise<TestClient> => app.connect('/', { query: { user } });
  const nodeId = (): string => app.app.get(PresenceService).nodeId;

  it('join is idempotent: a second join updates the meta and never doubles delivery', async () => {
    await start();
    const client = await connect('ann');
    const ann = handler.session('ann');

    expect(delivery.join(ann, 'room', { role: 'guest' })).toBe(true);
    expect(delivery.join(ann, 'room', { role: 'admin' })).toBe(false);

    expect(delivery.localMembers('room')).toEqual([{ userId: 'ann', sessionId: ann.id, meta: { role: 'admin' }, node: nodeId() }]);
    expect(delivery.deliver({ channel: 'room' }, { once: true })).toBe(1);
    expect(await client.expectMessage()).toEqual({ once: true });
    await client.expectNoMessage(100);
  });

  it('leave(session, channel) stops delivery to that session only; a second leave returns 0', async () => {
    await start();
    const [annClient, bobClient] = [await connect('ann'), await connect('bob')];
    delivery.join(handler.session('ann'), 'room');
    delivery.join(handler.session('bob'), 'room');

    expect(delivery.leave(handler.session('ann'), 'room')).toBe(1);
    expect(delivery.leave(handler.session('ann'), 'room')).toBe(0);

    expect(delivery.deliver({ channel: 'room' }, { after: 'leave' })).toBe(1);
    expect(await bobClient.expectMessage()).toEqual({ after: 'leave' });
    await annClient.expectNoMessage(100);
  });

  it('leaveAll(session) leaves every channel of the session and returns how many', async () => {
    await start();
    const client = await connect('ann');
    const ann = handler.session('ann');
    for (const channel of ['a', 'b', 'c']) delivery.join(ann, channel);

    expect(delivery.leaveAll(ann)).toBe(3);

    expect(delivery.channelsOf(ann)).toEqual([]);
    for (const channel of ['a', 'b', 'c']) expect(delivery.deliver({ channel }, { x: channel })).toBe(0);
    await client.expectNoMessage(100);
  });

  it('leave(session) without a channel leaves every channel', async () => {
    await start();
    await connect('ann');
    const ann = handler.session('ann');
    delivery.join(ann, 'a');
    delivery.join(ann, 'b');

    expect(delivery.leave(ann)).toBe(2);

    expect(delivery.channelsOf(ann)).toEqual([]);
    expect(delivery.localMembers('a')).toEqual([]);
  });

  it('isMember tells whether a session is in a channel', async () => {
    await start();
    await connect('ann');
    await connect('bob');
    delivery.join(handler.session('ann'), 'room');

    expect(delivery.isMember(handler.session('ann'), 'room')).toBe(true);
    expect(delivery.isMember(handler.session('bob'), 'room')).toBe(false);
    expect(delivery.isMember(handler.session('ann'), 'elsewhere')).toBe(false);
  });

  it('compares channel ids as strings: joined as 7, reached as "7"', async () => {
    await start();
    const client = await connect('ann');
    delivery.join(handler.session('ann'), 7);

    expect(delivery.isMember(handler.session('ann'), '7')).toBe(true);
    expect(delivery.deliver({ channel: '7' }, { seven: true })).toBe(1);
    expect(await client.expectMessage()).toEqual({ seven: true });
  });

  it('members(channel) lists the userId, sessionId, meta and node of every member; on one node the answer is complete at once', async () => {
    await start();
    await connect('ann');
    await connect('bob');
    await connect('cid');
    delivery.join(handler.session('ann'), 'room', { nick: 'A' });
    delivery.join(handler.session('bob'), 'room');
    delivery.join(handler.session('cid'), 'other', { nick: 'C' });

    const answer = await delivery.members('room');
    const members = answer.members.sort((x, y) => x.userId.localeCompare(y.userId));

    expect(members).toEqual([
      { userId: 'ann', sessionId: handler.session('ann').id, meta: { nick: 'A' }, node: nodeId() },
      { userId: 'bob', sessionId: handler.session('bob').id, meta: undefined, node: nodeId() },
    ]);
    expect(answer).toMatchObject({ complete: true, missingNodes: [] });
    expect(delivery.localMembers('room').sort((x, y) => x.userId.localeCompare(y.userId))).toEqual(members);
    expect(await delivery.members('nobody-here')).toEqual({ members: [], complete: true, missingNodes: [] });
    expect(delivery.localMembers('nobody-here')).toEqual([]);
  });

  it('channelsOf(session) lists the channels of that session', async () => {
    await start();
    await connect('ann');
    const ann = handler.session('ann');
    delivery.join(ann, 'a');
    delivery.join(ann, 2);

    expect(delivery.channelsOf(ann).sort()).toEqual(['2', 'a']);
  });

  it('a session leaves all its channels when it ends: gone from members, no longer delivered to', async () => {
    await start();
    const [annClient, bobClient] = [await connect('ann'), await connect('bob')];
    for (const channel of ['a', 'b']) {
      delivery.join(handler.session('ann'), channel);
      delivery.join(handler.session('bob'), channel);
    }

    await annClient.close(1000);

    await eventually(() => expect(delivery.localMembers('a').map((m) => m.userId)).toEqual(['bob']));
    expect(delivery.localMembers('b').map((m) => m.userId)).toEqual(['bob']);
    expect(delivery.channelsOf(handler.session('ann'))).toEqual([]);
    expect(delivery.deliver({ channel: 'a' }, { still: 'here' })).toBe(1);
    expect(await bobClient.expectMessage()).toEqual({ still: 'here' });
  });

  it('@OnTerminate still sees the channels of the ending session; they are left right after it', async () => {
    await start();
    const client = await connect('ann');
    delivery.join(handler.session('ann'), 'a');
    delivery.join(handler.session('ann'), 'b');

    await client.close(1000);

    await eventually(() => expect(handler.channelsAtTerminate.get('ann')).toEqual(['a', 'b']));
    expect(delivery.localMembers('a')).toEqual([]);
    expect(delivery.localMembers('b')).toEqual([]);
  });

  it('a channel broadcast includes the sender when the sender is a member', async () => {
    await start();
    const [annClient, bobClient] = [await connect('ann'), await connect('bob')];
    delivery.join(handler.session('ann'), 'room');
    delivery.join(handler.session('bob'), 'room');

    annClient.send({ say: 'hi all', to: 'room' });

    expect(await annClient.expectMessage()).toEqual({ from: 'ann', say: 'hi all' });
    expect(await bobClient.expectMessage()).toEqual({ from: 'ann', say: 'hi all' });
  });
});

describe('session.join / leave / channels shortcuts (SPEC 4.1)', () => {
  let app: RunningApp;
  afterEach(() => app?.close());

  it('session.join joins (true, then false when already joined) and session.channels lists the channels', async () => {
    app = await startRiverside({}, [ChannelsHandler]);
    const client = await app.connect('/', { query: { user: 'ann' } });

    client.send({ join: 'a' });
    client.send({ join: 'b', meta: { m: 1 } });
    client.send({ join: 'b', meta: { m: 2 } });

    expect(await client.expectMessages(3)).toEqual([
      { joined: true, channels: ['a'] },
      { joined: true, channels: ['a', 'b'] },
      { joined: false, channels: ['a', 'b'] },
    ]);
    expect(app.app.get(DeliveryService).localMembers('b')[0]?.meta).toEqual({ m: 2 });
  });

  it('session.leave(channel) leaves one channel and session.leave() leaves the rest', async () => {
    app = await startRiverside({}, [ChannelsHandler]);
    const client = await app.connect('/', { query: { user: 'ann' } });
    for (const channel of ['a', 'b', 'c']) client.send({ join: channel });
    await client.expectMessages(3);

    client.send({ leave: 'a' });
    client.send({ leave: 'a' });
    client.send({ leave: null });

    expect(await client.expectMessages(3)).toEqual([
      { left: 1, channels: ['b', 'c'] },
      { left: 0, channels: ['b', 'c'] },
      { left: 2, channels: [] },
    ]);
    expect(app.app.get(DeliveryService).deliver({ channel: 'b' }, { x: 1 })).toBe(0);
  });
});

// Riverside's test/channel_broadcast_test.exs (reference B7), with the values the handler
// really produces: "from" is "<channel>/<user id>/<session id>", the sender is included, the
// "to" field is ignored, and the other channel hears nothing.
@RiversideHandler()
class ChannelBroadcastHandler {
  private static readonly USERS: Record<string, number> = { foo: 1, bar: 2, buz: 3 };
  readonly sessions: Session<{ channel: string }>[] = [];
  constructor(private readonly delivery: DeliveryService) {}

  @OnAuthenticate()
  authenticate(req: AuthRequest) {
    const userId = ChannelBroadcastHandler.USERS[req.bearerToken];
    if (userId === undefined) throw AuthError.unauthorized().withBearerRealm('example.org', 'invalid_token');
    return { userId, state: { channel: String(req.queries.channel) } };
  }

  @OnInit()
  init(session: Session<{ channel: string }>) {
    this.sessions.push(session);
    session.join(session.state.channel);
  }

  @OnMessage()
  onMessage(incoming: { content: string }, session: Session<{ channel: string }>) {
    const { channel } = session.state;
    this.delivery.deliver({ channel }, { from: `${channel}/${session.userId}/${session.id}`, content: incoming.content });
  }

  sessionId(userId: string, channel: string): string {
    const session = this.sessions.find((s) => s.userId === userId && s.state.channel === channel);
    if (!session) throw new Error(`no session for user ${userId} in channel ${channel}`);
    return session.id;
  }
}

describe('broadcast in channel (Riverside B7)', () => {
  let app: RunningApp;
  afterEach(() => app?.close());

  async function fourClients() {
    app = await startRiverside({}, [ChannelBroadcastHandler]);
    return {
      foo1: await app.connect('/', { bearer: 'foo', query: { channel: '1' } }),
      bar: await app.connect('/', { bearer: 'bar', query: { channel: '1' } }),
      buz: await app.connect('/', { bearer: 'buz', query: { channel: '2' } }),
      foo2: await app.connect('/', { bearer: 'foo', query: { channel: '2' } }),
      handler: app.app.get(ChannelBroadcastHandler),
    };
  }

  it('foo1 (user 1) says Hello in channel 1: foo1 and bar each get {"from":"1/1/<foo1 sid>"} once, channel 2 gets nothing', async () => {
    const { foo1, bar, buz, foo2, handler } = await fourClients();

    foo1.send({ to: 'foo', content: 'Hello' });

    const expected = { from: `1/1/${handler.sessionId('1', '1')}`, content: 'Hello' };
    expect(await foo1.expectMessage()).toEqual(expected);
    expect(await bar.expectMessage()).toEqual(expected);
    expect(expected.from.split('/')).toEqual(['1', '1', expect.stringMatching(/^[0-9a-f]{40}$/)]);
    await Promise.all([buz.expectNoMessage(150), foo2.expectNoMessage(150), foo1.expectNoMessage(0), bar.expectNoMessage(0)]);
  });

  it('buz (user 3) says Hey in channel 2: foo2 and buz each get {"from":"2/3/<buz sid>"} once, channel 1 gets nothing', async () => {
    const { foo1, bar, buz, foo2, handler } = await fourClients();

    buz.send({ to: 'foo', content: 'Hey' });

    const expected = { from: `2/3/${handler.sessionId('3', '2')}`, content: 'Hey' };
    expect(await foo2.expectMessage()).toEqual(expected);
    expect(await buz.expectMessage()).toEqual(expected);
    await Promise.all([foo1.expectNoMessage(150), bar.expectNoMessage(150), foo2.expectNoMessage(0), buz.expectNoMessage(0)]);
  });

  it('refuses an unknown bearer token with 401 before joining any channel', async () => {
    app = await startRiverside({}, [ChannelBroadcastHandler]);

    await expect(app.connect('/', { bearer: 'nope', query: { channel: '1' } })).rejects.toMatchObject({ status: 401 });
    expect(app.app.get(DeliveryService).localMembers('1')).toEqual([]);
  });
});
