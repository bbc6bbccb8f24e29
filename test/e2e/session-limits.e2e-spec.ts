import 'reflect-metadata';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type AuthRequest,
  DeliveryService,
  OnAuthenticate,
  OnInfo,
  OnInit,
  OnMessage,
  RawTextCodec,
  RiversideError,
  RiversideHandler,
  RiversideStats,
  type Session,
} from 'nestjs-riverside';
import { TestClient } from 'nestjs-riverside/testing';
import { eventually, type RunningApp, startRiverside } from '../support/riverside-app.js';

/** `{ join }` joins a channel and answers what happened: joined, or the error's code. */
@RiversideHandler()
class JoinHandler {
  static session: Session | null = null;

  @OnAuthenticate()
  authenticate(req: AuthRequest) {
    return {
      userId: typeof req.queries.user === 'string' ? req.queries.user : 'u',
      sessionId: typeof req.queries.sid === 'string' ? req.queries.sid : undefined,
    };
  }

  @OnInit()
  init(session: Session) {
    JoinHandler.session = session;
  }

  @OnMessage()
  onMessage(message: { join?: string; after?: number }, session: Session) {
    if (message.after !== undefined) {
      try {
        session.sendAfter(message.after, 'fired');
        return { scheduled: true };
      } catch (error) {
        return { refused: (error as Error).name, message: (error as Error).message };
      }
    }
    try {
      return { joined: session.join(message.join!) };
    } catch (error) {
      return { refused: (error as RiversideError).code, message: (error as Error).message };
    }
  }

  @OnInfo()
  onInfo(info: unknown) {
    return { info };
  }
}

describe('limits on what a session can make the server hold (maxChannelsPerSession, maxIdLength)', () => {
  let app: RunningApp;
  afterEach(() => app?.close());

  it('refuses a join past maxChannelsPerSession with RIVERSIDE_ERR_TOO_MANY_CHANNELS, counts it, and still lets a joined channel be re-joined', async () => {
    app = await startRiverside({ maxChannelsPerSession: 3 }, [JoinHandler]);
    const client = await app.connect('/');
    for (const channel of ['a', 'b', 'c']) {
      client.send({ join: channel });
      expect(await client.expectMessage()).toEqual({ joined: true });
    }
    client.send({ join: 'd' });
    expect(await client.expectMessage()).toEqual({
      refused: 'RIVERSIDE_ERR_TOO_MANY_CHANNELS',
      message: expect.stringContaining('maxChannelsPerSession (3)'),
    });
    client.send({ join: 'a' });
    expect(await client.expectMessage()).toEqual({ joined: false });
    const delivery = app.app.get(DeliveryService);
    expect(delivery.localMembers('d')).toEqual([]);
    expect(() => delivery.join(JoinHandler.session!, 'e')).toThrow(RiversideError);
    expect(app.app.get(RiversideStats).refusedJoins).toBe(2);
    expect(JoinHandler.session!.channels().sort()).toEqual(['a', 'b', 'c']);
  });

  it('allows 100 channels per session by default', async () => {
    app = await startRiverside({}, [JoinHandler]);
    await app.connect('/');
    await eventually(() => expect(JoinHandler.session).not.toBeNull());
    for (let i = 0; i < 100; i++) JoinHandler.session!.join(`room-${i}`);
    expect(() => JoinHandler.session!.join('room-100')).toThrow(
      expect.objectContaining({ code: 'RIVERSIDE_ERR_TOO_MANY_CHANNELS' }),
    );
  });

  it('refuses a channel id longer than maxIdLength UTF-8 bytes (256 by default) with RIVERSIDE_ERR_ID_TOO_LONG', async () => {
    app = await startRiverside({}, [JoinHandler]);
    const client = await app.connect('/');
    client.send({ join: 'x'.repeat(256) });
    expect(await client.expectMessage()).toEqual({ joined: true });
    // 86 characters, 258 bytes.
    client.send({ join: '€'.repeat(86) });
    expect(await client.expectMessage()).toEqual({
      refused: 'RIVERSIDE_ERR_ID_TOO_LONG',
      message: expect.stringContaining('maxIdLength'),
    });
    expect(app.app.get(RiversideStats).refusedJoins).toBe(1);
  });

  it('refuses the handshake with 500 when @OnAuthenticate returns a userId or sessionId over maxIdLength, naming the limit in the log', async () => {
    app = await startRiverside({ maxIdLength: 16 }, [JoinHandler]);
    const long = 'x'.repeat(17);
    expect((await TestClient.expectRefused(app.url('/'), { query: { user: long } })).status).toBe(500);
    expect((await TestClient.expectRefused(app.url('/'), { query: { user: 'ok', sid: long } })).status).toBe(500);
    expect(app.logger.errors()).toEqual([
      expect.stringContaining('userId must be at most 16 bytes (maxIdLength)'),
      expect.stringContaining('sessionId must be at most 16 bytes (maxIdLength)'),
    ]);
    const client = await app.connect('/', { query: { user: 'x'.repeat(16) } });
    client.send({ join: 'fits' });
    expect(await client.expectMessage()).toEqual({ joined: true });
  });
});

describe('session.sendAfter beyond what a timer can hold', () => {
  let app: RunningApp;
  afterEach(() => app?.close());

  it('refuses a delay over 2^31-1 ms with a RangeError instead of firing at once', async () => {
    app = await startRiverside({}, [JoinHandler]);
    const client = await app.connect('/');
    client.send({ after: 2 ** 31 });
    expect(await client.expectMessage()).toEqual({
      refused: 'RangeError',
      message: expect.stringContaining('2147483647'),
    });
    await client.expectNoMessage(200);
    client.send({ after: 2 ** 31 - 1 });
    expect(await client.expectMessage()).toEqual({ scheduled: true });
    await client.expectNoMessage(100);
  });
});

/**
 * The bytes waiting in the socket's write queue, as UTF-8 on the wire. Not `ws.bufferedAmount`:
 * Node counts a queued string by its length in UTF-16 units.
 */
function unsentBytes(ws: unknown): number {
  const socket = (ws as { _socket: { writableBuffer: { chunk: string | Buffer }[] } })._socket;
  let bytes = 0;
  for (const { chunk } of socket.writableBuffer) bytes += Buffer.byteLength(chunk);
  return bytes;
}

describe('slow-consumer accounting in bytes', () => {
  /** `flood` writes 16,384 '€' (49,152 bytes of UTF-8) per message until a write is refused. */
  @RiversideHandler({ path: '/euro', codec: RawTextCodec })
  class EuroHandler {
    static sent = 0;

    @OnMessage()
    onMessage(_message: string, session: Session) {
      const text = '€'.repeat(16_384);
      EuroHandler.sent = 0;
      while (EuroHandler.sent < 2000 && session.send(text)) EuroHandler.sent++;
      return undefined;
    }
  }

  let app: RunningApp;
  afterEach(() => app?.close());

  it('counts UTF-8 bytes, not UTF-16 units: unsent bytes never pass maxBackpressure', async () => {
    // Room for one more message as UTF-16 counts it (16 Ki units), not as it is on the wire (48 KiB).
    const LIMIT = 80 * 1024;
    app = await startRiverside({ maxBackpressure: LIMIT, slowConsumer: 'drop' }, [EuroHandler]);
    const client = await app.connect('/euro', { codec: new RawTextCodec() });
    client.ws.pause();
    client.send('flood');
    await eventually(() => expect(EuroHandler.sent).toBeGreaterThan(0));
    const [connection] = app.server.registry.connections;
    expect(EuroHandler.sent).toBeLessThan(2000);
    expect(unsentBytes(connection.ws)).toBeLessThanOrEqual(LIMIT);
  });
});
