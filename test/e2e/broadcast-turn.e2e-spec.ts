import 'reflect-metadata';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type AuthRequest,
  DeliveryService,
  Frame,
  OnAuthenticate,
  OnInit,
  RiversideHandler,
  type Session,
} from 'nestjs-riverside';
import type { TestClient } from 'nestjs-riverside/testing';
import { eventually, type RunningApp, startRiverside } from '../support/riverside-app.js';

// What a channel broadcast reaches, and in which order, when other things happen to its channel
// and its members in the same event-loop turn (everything after deliver() below runs in the
// turn deliver() was called in). A broadcast's frame leaves a member's socket at the end of the
// turn, with whatever else the turn wrote to it; none of this may tell.

/** Joins 'room' at @OnInit, except the user 'outsider'; keeps each user's session. */
@RiversideHandler()
class RoomHandler {
  static readonly sessions = new Map<string, Session>();

  @OnAuthenticate()
  authenticate(request: AuthRequest) {
    return { userId: String(request.queries.user ?? 'anon') };
  }

  @OnInit()
  init(session: Session) {
    RoomHandler.sessions.set(session.userId, session);
    if (session.userId !== 'outsider') session.join('room');
  }
}

describe('a channel broadcast and what follows it in the same turn', () => {
  let app: RunningApp;
  let delivery: DeliveryService;
  afterEach(() => app?.close());

  async function start(): Promise<void> {
    RoomHandler.sessions.clear();
    app = await startRiverside({}, [RoomHandler]);
    delivery = app.app.get(DeliveryService);
  }

  async function connect(user: string): Promise<TestClient> {
    const client = await app.connect('/', { query: { user } });
    await eventually(() => expect(RoomHandler.sessions.has(user)).toBe(true));
    return client;
  }

  function session(user: string): Session {
    return RoomHandler.sessions.get(user) as Session;
  }

  it('does not reach a session that joins after it, which gets the next one', async () => {
    await start();
    const member = await connect('ann');
    const outsider = await connect('outsider');

    delivery.deliver({ channel: 'room' }, { n: 1 });
    session('outsider').join('room');
    delivery.deliver({ channel: 'room' }, { n: 2 });

    expect(await member.expectMessages(2)).toEqual([{ n: 1 }, { n: 2 }]);
    expect(await outsider.expectMessage()).toEqual({ n: 2 });
    await outsider.expectNoMessage(50);
  });

  it('still reaches a session that leaves after it, which misses the next one', async () => {
    await start();
    const leaver = await connect('ann');
    const stayer = await connect('bob');

    delivery.deliver({ channel: 'room' }, { n: 1 });
    session('ann').leave('room');
    delivery.deliver({ channel: 'room' }, { n: 2 });

    expect(await leaver.expectMessage()).toEqual({ n: 1 });
    expect(await stayer.expectMessages(2)).toEqual([{ n: 1 }, { n: 2 }]);
    await leaver.expectNoMessage(50);
  });

  it('still reaches the last member leaving the channel, and the channel is gone after', async () => {
    await start();
    const leaver = await connect('ann');

    delivery.deliver({ channel: 'room' }, { n: 1 });
    delivery.leaveAll(session('ann'));

    expect(delivery.deliver({ channel: 'room' }, { n: 2 })).toBe(0);
    expect(await leaver.expectMessage()).toEqual({ n: 1 });
    await leaver.expectNoMessage(50);
  });

  it('comes before what is sent to a member after it: session.send, a delivery to its user', async () => {
    await start();
    const member = await connect('ann');

    delivery.deliver({ channel: 'room' }, { n: 1 });
    session('ann').send({ n: 2 });
    delivery.deliver({ channel: 'room' }, { n: 3 });
    delivery.deliver({ user: 'ann' }, { n: 4 });
    delivery.deliver({ channel: 'room' }, { n: 5 });

    expect(await member.expectMessages(5)).toEqual([1, 2, 3, 4, 5].map((n) => ({ n })));
  });

  it('comes after what was sent to a member before it', async () => {
    await start();
    const member = await connect('ann');

    session('ann').send({ n: 1 });
    delivery.deliver({ channel: 'room' }, { n: 2 });

    expect(await member.expectMessages(2)).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it('reaches a member closed after it ahead of the close frame; a member closed before gets nothing', async () => {
    await start();
    const closedAfter = await connect('ann');
    const closedBefore = await connect('bob');

    delivery.close({ user: 'bob' }, 4001, 'before');
    delivery.deliver({ channel: 'room' }, { n: 1 });
    session('ann').close(4000, 'after');

    expect(await closedAfter.expectMessage()).toEqual({ n: 1 });
    expect(await closedAfter.expectClose(4000)).toEqual({ code: 4000, reason: 'after' });
    expect(await closedBefore.expectClose(4001)).toEqual({ code: 4001, reason: 'before' });
  });

  it('sends what the message and a Frame held when deliver() was called, not what they hold later', async () => {
    await start();
    const member = await connect('ann');
    const message = { n: 1 };
    const bytes = Buffer.from([1, 2, 3]);

    delivery.deliver({ channel: 'room' }, message);
    delivery.deliver({ channel: 'room' }, Frame.binary(bytes));
    message.n = 2;
    bytes.fill(9);

    expect(await member.expectMessage()).toEqual({ n: 1 });
    expect([...(await member.expectFrame()).data]).toEqual([1, 2, 3]);
  });

  it('returns how many local sockets it was written to', async () => {
    await start();
    await connect('ann');
    await connect('bob');
    await connect('outsider');

    expect(delivery.deliver({ channel: 'room' }, { n: 1 })).toBe(2);
    expect(delivery.deliver({ channel: 'nobody-here' }, { n: 1 })).toBe(0);
  });
});
