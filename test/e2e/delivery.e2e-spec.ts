import 'reflect-metadata';
import { Body, Controller, HttpCode, Injectable, Module, Param, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  AuthError,
  type AuthRequest,
  type Codec,
  DeliveryService,
  EncodeError,
  Frame,
  JsonCodec,
  OnAuthenticate,
  OnInfo,
  OnInit,
  OnMessage,
  OnTerminate,
  RiversideHandler,
  RiversideModule,
  RiversideStats,
  type Session,
  type TerminateReason,
} from 'nestjs-riverside';
import { TestClient } from 'nestjs-riverside/testing';
import { eventually, RecordingLogger, type RunningApp, running, startRiverside } from '../support/riverside-app.js';

// ws's frame builder, which both ws.send() and the pre-framed broadcast path go through.

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

/** The identity comes from the query: ?user=alice&sid=s1 (&numeric makes the user id a number). */
function identityFromQuery(req: AuthRequest) {
  const user = String(req.queries.user ?? 'anonymous');
  const sid = req.queries.sid;
  return {
    userId: req.queries.numeric === true ? Number(user) : user,
    ...(typeof sid === 'string' && { sessionId: sid }),
  };
}

/** Records every session and termination; replies to infos with { info }. */
@RiversideHandler()
class DirectoryHandler {
  readonly sessions: Session[] = [];
  readonly terminated: { session: Session; reason: TerminateReason }[] = [];

  @OnAuthenticate()
  authenticate(req: AuthRequest) {
    return identityFromQuery(req);
  }

  @OnInit()
  init(session: Session) {
    this.sessions.push(session);
  }

  @OnInfo()
  onInfo(info: unknown, session: Session) {
    session.send({ info });
  }

  @OnTerminate()
  terminate(reason: TerminateReason, session: Session) {
    this.terminated.push({ session, reason });
  }

  session(userId: string, sessionId?: string): Session {
    const found = this.sessions.find((s) => s.userId === userId && (sessionId === undefined || s.id === sessionId));
    if (!found) throw new Error(`no session for ${userId}/${sessionId}`);
    return found;
  }
}

describe('DeliveryService.deliver (SPEC 6.1, 6.5)', () => {
  let app: RunningApp;
  afterEach(() => app?.close());

  const connect = (user: string, sid?: string, extra: Record<string, string | boolean> = {}) =>
    app.connect('/', { query: { user, ...(sid && { sid }), ...extra } });

  it('delivers to { user } on all three sessions of that user, and returns 3', async () => {
    app = await startRiverside({}, [DirectoryHandler]);
    const alice = [await connect('alice', 's1'), await connect('alice', 's2'), await connect('alice', 's3')];
    const bob = await connect('bob', 's1');
    const delivery = app.app.get(DeliveryService);

    expect(delivery.deliver({ user: 'alice' }, { hello: 'alice' })).toBe(3);

    for (const client of alice) expect(await client.expectMessage()).toEqual({ hello: 'alice' });
    await bob.expectNoMessage(100);
    for (const client of alice) await client.expectNoMessage(0);
  });

  it('delivers to { session: [userId, sessionId] } on exactly that session, and returns 1', async () => {
    app = await startRiverside({}, [DirectoryHandler]);
    const [s1, s2, s3] = [await connect('alice', 's1'), await connect('alice', 's2'), await connect('alice', 's3')];
    const other = await connect('bob', 's2');
    const delivery = app.app.get(DeliveryService);

    expect(delivery.deliver({ session: ['alice', 's2'] }, { only: 's2' })).toBe(1);

    expect(await s2.expectMessage()).toEqual({ only: 's2' });
    await Promise.all([s1.expectNoMessage(100), s3.expectNoMessage(100), other.expectNoMessage(100)]);
  });

  it('delivers to { channel } on every member only, and returns how many sockets were written', async () => {
    app = await startRiverside({}, [DirectoryHandler]);
    const [a, b, outsider] = [await connect('a'), await connect('b'), await connect('c')];
    const delivery = app.app.get(DeliveryService);
    const directory = app.app.get(DirectoryHandler);
    delivery.join(directory.session('a'), 'room');
    delivery.join(directory.session('b'), 'room');

    expect(delivery.deliver({ channel: 'room' }, { room: 'hi' })).toBe(2);

    expect(await a.expectMessage()).toEqual({ room: 'hi' });
    expect(await b.expectMessage()).toEqual({ room: 'hi' });
    await outsider.expectNoMessage(100);
  });

  it('compares ids as strings: { user: 1 } reaches a user authenticated as "1"', async () => {
    app = await startRiverside({}, [DirectoryHandler]);
    const client = await connect('1', 'sid-1');
    const delivery = app.app.get(DeliveryService);

    expect(delivery.deliver({ user: 1 }, { n: 1 })).toBe(1);
    expect(delivery.deliver({ session: [1, 'sid-1'] }, { n: 2 })).toBe(1);

    expect(await client.expectMessages(2)).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it('compares ids as strings: { user: "42" } reaches a user authenticated with the number 42', async () => {
    app = await startRiverside({}, [DirectoryHandler]);
    const client = await connect('42', undefined, { numeric: true });
    expect(app.app.get(DirectoryHandler).session('42').userId).toBe('42');

    expect(app.app.get(DeliveryService).deliver({ user: '42' }, { n: 42 })).toBe(1);

    expect(await client.expectMessage()).toEqual({ n: 42 });
  });

  it('returns 0 and does not throw for targets with no session', async () => {
    app = await startRiverside({}, [DirectoryHandler]);
    const bystander = await connect('someone', 'here');
    const delivery = app.app.get(DeliveryService);

    expect(delivery.deliver({ user: 'nobody' }, { x: 1 })).toBe(0);
    expect(delivery.deliver({ session: ['someone', 'elsewhere'] }, { x: 1 })).toBe(0);
    expect(delivery.deliver({ channel: 'empty' }, { x: 1 })).toBe(0);
    expect(delivery.info({ user: 'nobody' }, 'ping')).toBe(0);
    expect(delivery.close({ channel: 'empty' })).toBe(0);

    await bystander.expectNoMessage(100);
  });

  it('drops a write to a closing socket quietly: 0 written, no throw, the client only sees the close', async () => {
    app = await startRiverside({}, [DirectoryHandler]);
    const client = await connect('alice', 's1');
    const delivery = app.app.get(DeliveryService);

    expect(delivery.close({ session: ['alice', 's1'] }, 4001, 'bye')).toBe(1);
    expect(delivery.deliver({ session: ['alice', 's1'] }, { late: true })).toBe(0);
    expect(delivery.deliver({ session: ['alice', 's1'] }, Frame.text('late'))).toBe(0);

    expect(await client.expectClose(4001)).toEqual({ code: 4001, reason: 'bye' });
    await client.expectNoMessage(0);
  });

  it('drops a delivery made from @OnTerminate to the ending session quietly', async () => {
    const written: number[] = [];
    @RiversideHandler()
    class DeliversOnTerminate {
      constructor(private readonly delivery: DeliveryService) {}
      @OnTerminate()
      terminate(_reason: TerminateReason, session: Session) {
        written.push(this.delivery.deliver({ session: [session.userId, session.id] }, { too: 'late' }));
      }
    }
    app = await startRiverside({}, [DeliversOnTerminate]);
    const client = await app.connect('/');

    await client.close(1000);

    await eventually(() => expect(written).toEqual([0]));
    expect(app.logger.errors()).toEqual([]);
  });

  it('holds deliveries to a session back until its async @OnInit has finished, then writes them after its reply', async () => {
    const initGate = deferred();
    @RiversideHandler()
    class SlowInit {
      @OnAuthenticate()
      authenticate() {
        return { userId: 'u', sessionId: 'slow' };
      }
      @OnInit()
      async init() {
        await initGate.promise;
        return { welcome: true };
      }
    }
    app = await startRiverside({}, [SlowInit]);
    const client = await app.connect('/');
    const delivery = app.app.get(DeliveryService);

    expect(delivery.deliver({ session: ['u', 'slow'] }, { n: 1 })).toBe(1);
    expect(delivery.deliver({ user: 'u' }, { n: 2 })).toBe(1);
    await client.expectNoMessage(150);

    initGate.resolve();
    expect(await client.expectMessages(3)).toEqual([{ welcome: true }, { n: 1 }, { n: 2 }]);
  });
});

describe('delivery from the rest of the app', () => {
  let app: RunningApp;
  afterEach(() => app?.close());

  it('an HTTP controller delivers into a channel: members receive it, others do not', async () => {
    @RiversideHandler()
    class RoomHandler {
      @OnAuthenticate()
      authenticate(req: AuthRequest) {
        return { userId: String(req.queries.user), state: { room: String(req.queries.room) } };
      }
      @OnInit()
      init(session: Session<{ room: string }>) {
        session.join(session.state.room);
      }
    }

    @Controller('rooms')
    class RoomsController {
      constructor(private readonly delivery: DeliveryService) {}
      @Post(':room/messages')
      @HttpCode(200)
      say(@Param('room') room: string, @Body() body: { text: string }) {
        return { written: this.delivery.deliver({ channel: room }, { room, text: body.text }) };
      }
    }

    @Module({
      imports: [RiversideModule.forRoot({ port: 0, host: '127.0.0.1' })],
      controllers: [RoomsController],
      providers: [RoomHandler],
    })
    class ChatAppModule {}

    const logger = new RecordingLogger();
    const nest = await NestFactory.create(ChatAppModule, { logger });
    await nest.listen(0, '127.0.0.1');
    app = running(nest, logger);
    const { port } = nest.getHttpServer().address() as AddressInfo;
    const [ann, bea, cid] = [
      await app.connect('/', { query: { user: 'ann', room: 'lobby' } }),
      await app.connect('/', { query: { user: 'bea', room: 'lobby' } }),
      await app.connect('/', { query: { user: 'cid', room: 'kitchen' } }),
    ];

    const response = await fetch(`http://127.0.0.1:${port}/rooms/lobby/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'hello lobby' }),
    });

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ written: 2 });
    expect(await ann.expectMessage()).toEqual({ room: 'lobby', text: 'hello lobby' });
    expect(await bea.expectMessage()).toEqual({ room: 'lobby', text: 'hello lobby' });
    await cid.expectNoMessage(100);
  });

  it('a plain provider delivers to a user', async () => {
    @Injectable()
    class Notifier {
      constructor(private readonly delivery: DeliveryService) {}
      notify(userId: string, text: string): number {
        return this.delivery.deliver({ user: userId }, { notification: text });
      }
    }
    app = await startRiverside({}, [DirectoryHandler, Notifier]);
    const client = await app.connect('/', { query: { user: 'dana' } });

    expect(app.app.get(Notifier).notify('dana', 'you have mail')).toBe(1);

    expect(await client.expectMessage()).toEqual({ notification: 'you have mail' });
  });
});

describe('DeliveryService.info (SPEC 6.4, 4.4)', () => {
  let app: RunningApp;
  afterEach(() => app?.close());

  it('hands info to @OnInfo of every session behind the target and returns how many', async () => {
    app = await startRiverside({}, [DirectoryHandler]);
    const [a1, a2] = [await app.connect('/', { query: { user: 'a' } }), await app.connect('/', { query: { user: 'a' } })];
    const other = await app.connect('/', { query: { user: 'b' } });

    expect(app.app.get(DeliveryService).info({ user: 'a' }, { kind: 'refresh' })).toBe(2);

    expect(await a1.expectMessage()).toEqual({ info: { kind: 'refresh' } });
    expect(await a2.expectMessage()).toEqual({ info: { kind: 'refresh' } });
    await other.expectNoMessage(100);
  });

  it('runs info after the frames the connection received before it, in order, while a handler is busy', async () => {
    const gate = deferred();
    const started: unknown[] = [];
    @RiversideHandler()
    class BusyHandler {
      @OnAuthenticate()
      authenticate() {
        return { userId: 'busy' };
      }
      @OnMessage()
      async onMessage(message: { n: number }) {
        started.push(message);
        if (message.n === 1) await gate.promise;
        return { frame: message.n };
      }
      @OnInfo()
      onInfo(info: unknown) {
        started.push(info);
        return { info };
      }
    }
    app = await startRiverside({}, [BusyHandler]);
    const client = await app.connect('/');
    client.send({ n: 1 });
    client.send({ n: 2 });
    // A pong is written after the server has read every frame sent before the ping.
    const pong = new Promise((resolve) => client.ws.once('pong', resolve));
    client.ws.ping();
    await pong;
    await eventually(() => expect(started).toEqual([{ n: 1 }]));

    expect(app.app.get(DeliveryService).info({ user: 'busy' }, 'tick')).toBe(1);
    await client.expectNoMessage(50);
    gate.resolve();

    expect(await client.expectMessages(3)).toEqual([{ frame: 1 }, { frame: 2 }, { info: 'tick' }]);
  });
});

describe('DeliveryService.close (SPEC 6.4, 8)', () => {
  let app: RunningApp;
  afterEach(() => app?.close());

  it('closes every session behind the target with the given code and reason; @OnTerminate gets "stop"', async () => {
    app = await startRiverside({}, [DirectoryHandler]);
    const [c1, c2] = [await app.connect('/', { query: { user: 'x' } }), await app.connect('/', { query: { user: 'x' } })];
    const survivor = await app.connect('/', { query: { user: 'y' } });

    expect(app.app.get(DeliveryService).close({ user: 'x' }, 4000, 'kicked')).toBe(2);

    expect(await c1.expectClose()).toEqual({ code: 4000, reason: 'kicked' });
    expect(await c2.expectClose()).toEqual({ code: 4000, reason: 'kicked' });
    const directory = app.app.get(DirectoryHandler);
    await eventually(() => expect(directory.terminated.map((t) => [t.session.userId, t.reason])).toEqual([['x', 'stop'], ['x', 'stop']]));
    await survivor.expectNoMessage(50);
    expect(survivor.ws.readyState).toBe(survivor.ws.OPEN);
  });

  it('closes with 1000 and an empty reason by default', async () => {
    app = await startRiverside({}, [DirectoryHandler]);
    const client = await app.connect('/', { query: { user: 'x', sid: 'one' } });

    app.app.get(DeliveryService).close({ session: ['x', 'one'] });

    expect(await client.expectClose()).toEqual({ code: 1000, reason: '' });
  });
});

/** JSON that counts how often it encodes; a provider, so the test reads it through DI. */
@Injectable()
class CountingCodec extends JsonCodec {
  encodes = 0;
  override encode(message: unknown): string {
    this.encodes++;
    return super.encode(message);
  }
}

@RiversideHandler({ codec: CountingCodec })
class FanoutHandler {
  @OnInit()
  init(session: Session) {
    session.join('fanout');
  }
}

describe('encode once, frame once (SPEC 6.2, 5.4)', () => {
  const MEMBERS = 50;
  let app: RunningApp;
  afterEach(() => {
    vi.restoreAllMocks();
    return app?.close();
  });

  async function fiftyMembers(): Promise<TestClient[]> {
    app = await startRiverside({}, [CountingCodec, FanoutHandler]);
    const clients = await Promise.all(Array.from({ length: MEMBERS }, () => app.connect('/')));
    expect(app.app.get(DeliveryService).localMembers('fanout')).toHaveLength(MEMBERS);
    return clients;
  }

  it(`calls the codec's encode once for a broadcast to ${MEMBERS} members, and every member receives the frame`, async () => {
    const clients = await fiftyMembers();
    const codec = app.app.get(CountingCodec);
    codec.encodes = 0;

    expect(app.app.get(DeliveryService).deliver({ channel: 'fanout' }, { to: 'everyone' })).toBe(MEMBERS);

    expect(codec.encodes).toBe(1);
    const received = await Promise.all(clients.map((client) => client.expectFrame()));
    for (const frame of received) {
      expect(frame.isBinary).toBe(false);
      expect(frame.data.toString()).toBe('{"to":"everyone"}');
    }
  });

  it(`builds the WebSocket frame once for a broadcast to ${MEMBERS} members`, async () => {
    const clients = await fiftyMembers();
    const port = app.server.address().port;
    // What the server's sockets are given to write: the same frame buffer for every member.
    const written = new Set<unknown>();
    const originalWrite = Socket.prototype.write;
    const write = vi.spyOn(Socket.prototype, 'write').mockImplementation(function (this: Socket, ...args: unknown[]) {
      if (this.localPort === port) written.add(args[0]);
      return originalWrite.apply(this, args as Parameters<Socket['write']>);
    });

    app.app.get(DeliveryService).deliver({ channel: 'fanout' }, { framed: 'once' });
    // Written by the end of the event-loop turn at the latest: spied until every member has it.
    try {
      for (const client of clients) expect(await client.expectMessage()).toEqual({ framed: 'once' });
    } finally {
      write.mockRestore();
    }

    expect(written.size).toBe(1);
    expect(Buffer.from(written.values().next().value as Buffer).subarray(2).toString()).toBe('{"framed":"once"}');
  });

  it('writes a Frame as it is, without calling the codec (text and binary)', async () => {
    const clients = await fiftyMembers();
    const codec = app.app.get(CountingCodec);
    codec.encodes = 0;
    const delivery = app.app.get(DeliveryService);

    expect(delivery.deliver({ channel: 'fanout' }, Frame.text('not json {'))).toBe(MEMBERS);
    expect(delivery.deliver({ channel: 'fanout' }, Frame.binary(Uint8Array.of(1, 2, 3)))).toBe(MEMBERS);

    expect(codec.encodes).toBe(0);
    for (const client of clients) {
      const text = await client.expectFrame();
      expect([text.isBinary, text.data.toString()]).toEqual([false, 'not json {']);
      const binary = await client.expectFrame();
      expect([binary.isBinary, [...binary.data]]).toEqual([true, [1, 2, 3]]);
    }
  });

  it('throws an EncodeError for a message the codec cannot encode, and writes nothing', async () => {
    const clients = await fiftyMembers();
    const delivery = app.app.get(DeliveryService);

    expect(() => delivery.deliver({ channel: 'fanout' }, { big: 10n })).toThrow(EncodeError);
    expect(() => delivery.deliver({ channel: 'fanout' }, undefined)).toThrow(EncodeError);

    expect(app.app.get(RiversideStats).framesOut).toBe(0);
    await Promise.all(clients.map((client) => client.expectNoMessage(100)));
  });
});

/** Text frames with String(message): it can encode anything, BigInt included. */
@Injectable()
class LenientTextCodec implements Codec {
  readonly frameType = 'text' as const;
  decode(data: Buffer): unknown {
    return data.toString();
  }
  encode(message: unknown): string {
    return String((message as { big?: unknown }).big ?? message);
  }
}

@RiversideHandler({ path: '/lenient', codec: LenientTextCodec })
class LenientMember {
  @OnInit()
  init(session: Session) {
    session.join('mixed');
  }
}

@RiversideHandler({ path: '/json' })
class JsonMember {
  @OnInit()
  init(session: Session) {
    session.join('mixed');
  }
}

describe('a channel whose members use different codecs (SPEC 6.2)', () => {
  let app: RunningApp;
  afterEach(() => app?.close());

  it('encodes once per codec: each member receives the message in its own codec', async () => {
    app = await startRiverside({}, [LenientTextCodec, LenientMember, JsonMember]);
    const lenient = await app.connect('/lenient');
    const json = await app.connect('/json');

    expect(app.app.get(DeliveryService).deliver({ channel: 'mixed' }, { big: 'one' })).toBe(2);

    expect((await lenient.expectFrame()).data.toString()).toBe('one');
    expect((await json.expectFrame()).data.toString()).toBe('{"big":"one"}');
  });

  it('writes to no member when one of the codecs in use cannot encode the message', async () => {
    app = await startRiverside({}, [LenientTextCodec, LenientMember, JsonMember]);
    const lenient = await app.connect('/lenient'); // first in the channel: its codec succeeds
    const json = await app.connect('/json');

    expect(() => app.app.get(DeliveryService).deliver({ channel: 'mixed' }, { big: 10n })).toThrow(EncodeError);

    await Promise.all([lenient.expectNoMessage(100), json.expectNoMessage(100)]);
  });
});

// Riverside's test/direct_relay_test.exs (reference B6), option (b): the tokens map to distinct
// users "foo" and "bar", so a message "to" one user reaches that user only. The original handler
// gave both tokens user 1 and its expectations were never executed.
@RiversideHandler()
class DirectRelayHandler {
  readonly sessions = new Map<string, Session>();
  constructor(private readonly delivery: DeliveryService) {}

  @OnAuthenticate()
  authenticate(req: AuthRequest) {
    if (req.bearerToken === 'foo' || req.bearerToken === 'bar') return { userId: req.bearerToken };
    throw AuthError.unauthorized().withBearerRealm('example.org', 'invalid_token');
  }

  @OnInit()
  init(session: Session) {
    this.sessions.set(session.userId, session);
  }

  @OnMessage()
  onMessage(incoming: { to: string; content: string }, session: Session) {
    this.delivery.deliver({ user: incoming.to }, { from: `${session.userId}/${session.id}`, content: incoming.content });
  }
}

describe('direct relay (Riverside B6)', () => {
  let app: RunningApp;
  afterEach(() => app?.close());

  it('relays foo\'s message "to": "bar" to bar only, from "foo/<foo\'s session id>"', async () => {
    app = await startRiverside({}, [DirectRelayHandler]);
    const foo = await app.connect('/', { bearer: 'foo' });
    const bar = await app.connect('/', { bearer: 'bar' });
    const fooSid = app.app.get(DirectRelayHandler).sessions.get('foo')!.id;

    foo.send({ to: 'bar', content: 'Hello' });

    expect(await bar.expectMessage()).toEqual({ from: `foo/${fooSid}`, content: 'Hello' });
    expect(fooSid).toMatch(/^[0-9a-f]{40}$/);
    await foo.expectNoMessage(100);
  });

  it('relays bar\'s message "to": "foo" to foo only, from "bar/<bar\'s session id>"', async () => {
    app = await startRiverside({}, [DirectRelayHandler]);
    const foo = await app.connect('/', { bearer: 'foo' });
    const bar = await app.connect('/', { bearer: 'bar' });
    const barSid = app.app.get(DirectRelayHandler).sessions.get('bar')!.id;

    bar.send({ to: 'foo', content: 'Hey' });

    expect(await foo.expectMessage()).toEqual({ from: `bar/${barSid}`, content: 'Hey' });
    await bar.expectNoMessage(100);
  });

  it('refuses an unknown bearer token with 401 and WWW-Authenticate: Bearer realm="example.org", error="invalid_token"', async () => {
    app = await startRiverside({}, [DirectRelayHandler]);

    const refused = await TestClient.expectRefused(app.url('/'), { bearer: 'xyz' });

    expect(refused.status).toBe(401);
    expect(refused.headers['www-authenticate']).toBe('Bearer realm="example.org", error="invalid_token"');
  });
});

// Riverside's test/stats_test.exs (reference B5): an echo handler that stays silent for
// { dont_deliver: true }. Counters are read by polling, not after a fixed sleep.
@RiversideHandler()
class StatsHandler {
  @OnAuthenticate()
  authenticate() {
    return { userId: 1 };
  }
  @OnMessage()
  onMessage(message: { dont_deliver?: boolean }, session: Session) {
    if (!message.dont_deliver) session.send(message);
  }
}

describe('stats (Riverside B5)', () => {
  let app: RunningApp;
  afterEach(() => app?.close());

  const counts = (stats: RiversideStats) => ({
    totalConnections: stats.totalConnections,
    currentConnections: stats.currentConnections,
    framesIn: stats.framesIn,
    framesOut: stats.framesOut,
  });

  it('counts nothing before the first connection, then one connection and no frame once it is open', async () => {
    app = await startRiverside({}, [StatsHandler]);
    const stats = app.app.get(RiversideStats);
    expect(counts(stats)).toEqual({ totalConnections: 0, currentConnections: 0, framesIn: 0, framesOut: 0 });

    await app.connect('/');

    await eventually(() =>
      expect(counts(stats)).toEqual({ totalConnections: 1, currentConnections: 1, framesIn: 0, framesOut: 0 }),
    );
  });

  it('counts an echoed frame in and out, and a frame that gets no reply in only', async () => {
    app = await startRiverside({}, [StatsHandler]);
    const stats = app.app.get(RiversideStats);
    const client = await app.connect('/');

    client.send({ content: 'Hello' });
    expect(await client.expectMessage()).toEqual({ content: 'Hello' });
    await eventually(() =>
      expect(counts(stats)).toEqual({ totalConnections: 1, currentConnections: 1, framesIn: 1, framesOut: 1 }),
    );

    client.send({ content: 'Hello', dont_deliver: true });
    await client.expectNoMessage(100);
    await eventually(() =>
      expect(counts(stats)).toEqual({ totalConnections: 1, currentConnections: 1, framesIn: 2, framesOut: 1 }),
    );
  });

  it('counts a delivery once per socket written (Riverside counts outgoing per recipient)', async () => {
    app = await startRiverside({}, [StatsHandler]);
    const stats = app.app.get(RiversideStats);
    const clients = [await app.connect('/'), await app.connect('/'), await app.connect('/')];

    expect(app.app.get(DeliveryService).deliver({ user: 1 }, { to: 'all three' })).toBe(3);

    for (const client of clients) await client.expectMessage();
    expect([stats.framesIn, stats.framesOut]).toEqual([0, 3]);
  });

  it('counts the connection down when the client closes, keeping the totals', async () => {
    app = await startRiverside({}, [StatsHandler]);
    const stats = app.app.get(RiversideStats);
    const client = await app.connect('/');
    client.send({ content: 'Hello' });
    await client.expectMessage();
    client.send({ content: 'Hello', dont_deliver: true });

    expect(await client.close(1000)).toEqual({ code: 1000, reason: '' });

    await eventually(() =>
      expect(counts(stats)).toEqual({ totalConnections: 1, currentConnections: 0, framesIn: 2, framesOut: 1 }),
    );
    expect(stats.terminations).toEqual({ remote: 1 });
  });
});
