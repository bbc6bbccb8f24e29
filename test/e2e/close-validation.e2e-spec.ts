import 'reflect-metadata';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type AuthRequest,
  DeliveryService,
  Frame,
  OnAuthenticate,
  OnInit,
  OnTerminate,
  RiversideHandler,
  RiversideStats,
  type Session,
  type TerminateReason,
} from 'nestjs-riverside';
import { MemoryBus, MemoryBusTransport } from 'nestjs-riverside/testing';
// What another node (or an older version of this library) puts on the broker.
import { encodeWireMessage } from '../../src/cluster/wire-message.js';
import { eventually, type RunningApp, startRiverside } from '../support/riverside-app.js';

/** Keeps each session by user id, and records how each ended. */
@RiversideHandler()
class ClosableHandler {
  static readonly sessions = new Map<string, Session>();
  static readonly terminations = new Map<string, TerminateReason[]>();

  @OnAuthenticate()
  authenticate(req: AuthRequest) {
    return { userId: String(req.queries.user) };
  }

  @OnInit()
  init(session: Session) {
    ClosableHandler.sessions.set(session.userId, session);
  }

  @OnTerminate()
  terminate(reason: TerminateReason, session: Session) {
    const list = ClosableHandler.terminations.get(session.userId) ?? [];
    list.push(reason);
    ClosableHandler.terminations.set(session.userId, list);
  }
}

function remoteClose(bus: MemoryBus, user: string, code: number, reason: string): void {
  // The wire carries 16 bits of code, whatever the sending node was asked for.
  bus.publish(`t:user:${user}`, encodeWireMessage({ origin: 'node-x', session: null, kind: 'close', code: code & 0xffff, reason }));
}

/** The longest prefix of `reason` that fits 123 bytes of UTF-8 without splitting a character. */
function truncated(reason: string): string {
  let out = '';
  for (const char of reason) {
    if (Buffer.byteLength(out + char) > 123) break;
    out += char;
  }
  return out;
}

const validCode = (code: number) => Number.isInteger(code) && (code === 1000 || (code >= 3000 && code <= 4999));

describe('close codes and reasons validated at every entry (SPEC 8)', () => {
  let app: RunningApp;
  let bus: MemoryBus;
  let user = 0;
  beforeAll(async () => {
    bus = new MemoryBus();
    app = await startRiverside({ transport: new MemoryBusTransport(bus, 't') }, [ClosableHandler]);
  });
  afterAll(() => app?.close());

  async function connect() {
    const id = `u${++user}`;
    const client = await app.connect('/', { query: { user: id } });
    await eventually(() => expect(ClosableHandler.sessions.has(id)).toBe(true));
    return { id, client, session: ClosableHandler.sessions.get(id)! };
  }

  it('a remote close with code 1005 closes the session with 1000 instead, terminates it once, and is counted', async () => {
    const { id, client } = await connect();
    const stats = app.app.get(RiversideStats);
    const before = stats.invalidRemoteCloses;
    remoteClose(bus, id, 1005, 'from afar');

    expect(await client.expectClose()).toEqual({ code: 1000, reason: 'from afar' });
    await eventually(() => expect(ClosableHandler.terminations.get(id)).toEqual(['stop']));
    expect(stats.invalidRemoteCloses).toBe(before + 1);
    expect(app.logger.entries.some((e) => e.level === 'warn' && e.message.includes('1005'))).toBe(true);
  });

  it('a remote close with a 200-byte reason closes with the reason cut at 123 bytes, on a character boundary', async () => {
    const { id, client } = await connect();
    const reason = 'é'.repeat(100);
    remoteClose(bus, id, 4001, reason);

    expect(await client.expectClose()).toEqual({ code: 4001, reason: 'é'.repeat(61) });
    await eventually(() => expect(ClosableHandler.terminations.get(id)).toEqual(['stop']));
  });

  it('session.close and delivery.close refuse an invalid code or reason with a RangeError, and change nothing', async () => {
    const { id, client, session } = await connect();
    const delivery = app.app.get(DeliveryService);
    expect(() => session.close(1005)).toThrow(RangeError);
    expect(() => session.close(1000, 'x'.repeat(124))).toThrow(RangeError);
    expect(() => delivery.close({ user: id }, 999)).toThrow(RangeError);
    expect(() => delivery.close({ user: id }, 5000)).toThrow(RangeError);
    expect(session.isOpen).toBe(true);
    expect(session.send('still here')).toBe(true);
    expect(await client.expectMessage()).toBe('still here');
    session.close();
    expect(await client.expectClose()).toEqual({ code: 1000, reason: '' });
  });

  it('property: any code and reason, through any entry, never throws inside the connection and never leaves a zombie', async () => {
    const delivery = app.app.get(DeliveryService);
    const code = fc.oneof(
      fc.integer({ min: -2, max: 70_000 }),
      fc.constantFrom(999, 1000, 1001, 1004, 1005, 1006, 1015, 2999, 3000, 4999, 5000, 1.5, Number.NaN),
    );
    const reason = fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.string({ unit: 'grapheme', maxLength: 150 }));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('session', 'delivery', 'remote'), code, reason, async (entry, code, reason) => {
        const { id, client, session } = await connect();
        let threw: unknown = null;
        try {
          if (entry === 'session') session.close(code, reason);
          else if (entry === 'delivery') delivery.close({ user: id }, code, reason);
          else remoteClose(bus, id, code, reason);
        } catch (error) {
          threw = error;
        }
        const acceptable = validCode(code) && Buffer.byteLength(reason) <= 123;
        if (entry !== 'remote' && !acceptable) {
          // Refused before anything changed: the connection is as it was, and closes normally.
          expect(threw).toBeInstanceOf(RangeError);
          expect(session.isOpen).toBe(true);
          session.close(4000, 'after');
          expect(await client.expectClose()).toEqual({ code: 4000, reason: 'after' });
        } else {
          expect(threw).toBeNull();
          // A lone surrogate travels as U+FFFD, as UTF-8 has no other way to carry it.
          const sent = Buffer.from(reason).toString();
          const expected =
            entry === 'remote'
              ? { code: validCode(code & 0xffff) ? code & 0xffff : 1000, reason: truncated(sent) }
              : { code, reason: sent };
          expect(await client.expectClose()).toEqual(expected);
        }
        await eventually(() => expect(ClosableHandler.terminations.get(id)).toEqual(['stop']));
        await new Promise((resolve) => setImmediate(resolve));
        expect(ClosableHandler.terminations.get(id)).toHaveLength(1);
      }),
      { numRuns: 60 },
    );
    await eventually(() => expect(app.app.get(RiversideStats).currentConnections).toBe(0));
  }, 60_000);
});

describe('a slow consumer whose close frame cannot be written', () => {
  @RiversideHandler({ path: '/slow-reader' })
  class SlowReaderHandler {
    static readonly terminated: { reason: TerminateReason; at: number }[] = [];

    @OnAuthenticate()
    authenticate() {
      return { userId: 'reader' };
    }

    @OnTerminate()
    terminate(reason: TerminateReason) {
      SlowReaderHandler.terminated.push({ reason, at: performance.now() });
    }
  }

  let app: RunningApp;
  afterEach(() => app?.close());

  it('is terminated (its TCP connection dropped) shortly after the 3004 close, instead of lingering 30 s', async () => {
    app = await startRiverside({ maxBackpressure: 64 * 1024 }, [SlowReaderHandler]);
    const client = await app.connect('/slow-reader');
    client.ws.pause();
    const delivery = app.app.get(DeliveryService);
    const chunk = Frame.binary(Buffer.alloc(16 * 1024, 7));
    let closedAt = 0;
    for (let i = 0; i < 4096 && closedAt === 0; i++) {
      if (delivery.deliver({ user: 'reader' }, chunk) === 0) closedAt = performance.now();
    }
    expect(closedAt).toBeGreaterThan(0);

    await eventually(() => expect(SlowReaderHandler.terminated).toHaveLength(1), 5000);
    const [{ reason, at }] = SlowReaderHandler.terminated;
    expect(reason).toBe('slowConsumer');
    expect(at - closedAt).toBeLessThan(2500);
    expect(app.app.get(RiversideStats).currentConnections).toBe(0);
  });
});
