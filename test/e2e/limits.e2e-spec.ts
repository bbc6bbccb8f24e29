import 'reflect-metadata';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  DeliveryService,
  Frame,
  OnAuthenticate,
  OnInit,
  OnMessage,
  OnTerminate,
  RawBinaryCodec,
  RiversideHandler,
  RiversideStats,
  type Session,
  type TerminateReason,
} from 'nestjs-riverside';
import { HandshakeRefusedError, TestClient } from 'nestjs-riverside/testing';
import type { WebSocket } from 'ws';
import { connectionOf } from '../../src/connection/session.js';
import { eventually, type RunningApp, startRiverside } from '../support/riverside-app.js';

/** Echoes every frame it handles and records what it handled and why connections ended. */
@RiversideHandler()
class LimitsHandler {
  readonly handled: unknown[] = [];
  readonly reasons: TerminateReason[] = [];

  @OnAuthenticate()
  authenticate() {
    return { userId: 'u', sessionId: 's' };
  }

  @OnMessage()
  onMessage(message: unknown) {
    this.handled.push(message);
    return message;
  }

  @OnTerminate()
  terminate(reason: TerminateReason) {
    this.reasons.push(reason);
  }
}

describe('transmission limit (SPEC 7.1)', () => {
  let app: RunningApp;
  afterEach(() => app?.close());

  const flood = { transmissionLimit: { capacity: 5, duration: 10_000 } };

  it('handles frames 1-4 and closes at the 5th with 3001 "too many messages" and @OnTerminate "tooManyMessages"', async () => {
    app = await startRiverside(flood, [LimitsHandler]);
    const handler = app.app.get(LimitsHandler);
    const client = await app.connect('/');

    for (let n = 1; n <= 6; n++) client.send({ n });

    expect(await client.expectMessages(4)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
    expect(await client.expectClose()).toEqual({ code: 3001, reason: 'too many messages' });
    await eventually(() => expect(handler.reasons).toEqual(['tooManyMessages']));
    expect(handler.handled).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
  });

  it('by default (50 frames per 2000 ms, as Riverside) handles 49 frames and closes at the 50th with 3001', async () => {
    app = await startRiverside({}, [LimitsHandler]);
    const client = await app.connect('/');
    for (let i = 1; i <= 50; i++) client.send(i);
    expect(await client.expectMessages(49)).toEqual(Array.from({ length: 49 }, (_, i) => i + 1));
    expect(await client.expectClose(3001)).toEqual({ code: 3001, reason: 'too many messages' });
    expect(app.app.get(LimitsHandler).handled).toHaveLength(49);
  });

  it('keeps a connection open with capacity - 1 frames in the window', async () => {
    app = await startRiverside(flood, [LimitsHandler]);
    const client = await app.connect('/');

    for (let n = 1; n <= 4; n++) client.send({ n });

    expect(await client.expectMessages(4)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
    await client.expectNoMessage(100);
    expect(client.ws.readyState).toBe(client.ws.OPEN);
  });

  it('counts pings: four frames and then a ping close the connection with 3001', async () => {
    app = await startRiverside(flood, [LimitsHandler]);
    const client = await app.connect('/');

    for (let n = 1; n <= 4; n++) client.send({ n });
    client.ws.ping();

    expect(await client.expectMessages(4)).toHaveLength(4);
    expect(await client.expectClose()).toEqual({ code: 3001, reason: 'too many messages' });
  });

  it('lets frames pass again once the window has expired, and counts the new window from its first frame', async () => {
    app = await startRiverside({ transmissionLimit: { capacity: 3, duration: 400 } }, [LimitsHandler]);
    const client = await app.connect('/');
    client.send({ n: 1 });
    client.send({ n: 2 });
    expect(await client.expectMessages(2)).toEqual([{ n: 1 }, { n: 2 }]);

    // Waiting out the window is the behaviour under test; without the reset, frame 3 would close.
    await client.expectNoMessage(500);
    client.send({ n: 3 });
    client.send({ n: 4 });
    expect(await client.expectMessages(2)).toEqual([{ n: 3 }, { n: 4 }]);

    client.send({ n: 5 });
    expect(await client.expectClose()).toEqual({ code: 3001, reason: 'too many messages' });
  });
});

describe('idle timeout (SPEC 7.2)', () => {
  const IDLE = 300;
  let app: RunningApp;
  afterEach(() => app?.close());

  it('closes a silent client with 3003 "idle timeout" after idleTimeout, within a bounded time; @OnTerminate gets "idleTimeout"', async () => {
    app = await startRiverside({ idleTimeout: IDLE }, [LimitsHandler]);
    const started = performance.now();
    const client = await app.connect('/');

    expect(await client.expectClose(undefined, 3000)).toEqual({ code: 3003, reason: 'idle timeout' });

    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(IDLE - 5);
    expect(elapsed).toBeLessThan(IDLE + 700);
    await eventually(() => expect(app.app.get(LimitsHandler).reasons).toEqual(['idleTimeout']));
  });

  it('keeps a client that pings every 100 ms open past twice the idle timeout, answering each ping', async () => {
    app = await startRiverside({ idleTimeout: IDLE }, [LimitsHandler]);
    const client = await app.connect('/');
    let pongs = 0;
    client.ws.on('pong', () => pongs++);
    const pinger = setInterval(() => client.ws.ping(), 100);
    try {
      await client.expectNoMessage(2 * IDLE + 100);
    } finally {
      clearInterval(pinger);
    }

    expect(client.ws.readyState).toBe(client.ws.OPEN);
    expect(pongs).toBeGreaterThanOrEqual(4);
  });

  it('does not count frames the server sends as activity: a silent client that receives messages is still closed', async () => {
    app = await startRiverside({ idleTimeout: IDLE }, [LimitsHandler]);
    const client = await app.connect('/');
    const delivery = app.app.get(DeliveryService);
    const talker = setInterval(() => delivery.deliver({ user: 'u' }, { keep: 'talking' }), 50);
    try {
      expect(await client.expectClose(undefined, 3000)).toMatchObject({ code: 3003 });
    } finally {
      clearInterval(talker);
    }
  });
});

describe('max connection age (SPEC 7.3)', () => {
  const AGE = 300;
  let app: RunningApp;
  afterEach(() => app?.close());

  it('closes a connection maxConnectionAge after @OnInit with 3002 "over age", even while it is active; @OnTerminate gets "overAge"', async () => {
    app = await startRiverside({ maxConnectionAge: AGE }, [LimitsHandler]);
    const started = performance.now();
    const client = await app.connect('/');
    const pinger = setInterval(() => client.ws.ping(), 50);
    try {
      expect(await client.expectClose(undefined, 3000)).toEqual({ code: 3002, reason: 'over age' });
    } finally {
      clearInterval(pinger);
    }

    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(AGE - 5);
    expect(elapsed).toBeLessThan(AGE + 700);
    await eventually(() => expect(app.app.get(LimitsHandler).reasons).toEqual(['overAge']));
  });

  it('counts the age from the end of an async @OnInit', async () => {
    const INIT = 250;
    @RiversideHandler()
    class SlowInit {
      @OnInit()
      async init() {
        await new Promise((resolve) => setTimeout(resolve, INIT));
      }
    }
    app = await startRiverside({ maxConnectionAge: AGE }, [SlowInit]);
    const started = performance.now();
    const client = await app.connect('/');

    await client.expectClose(3002, 3000);

    expect(performance.now() - started).toBeGreaterThanOrEqual(INIT + AGE - 5);
  });
});

/** Keeps the session of the one connection of its test, to look at the server's socket. */
@RiversideHandler({ path: '/kept' })
class SessionKeeper {
  static session: Session | null = null;

  static forget(): void {
    SessionKeeper.session = null;
  }

  @OnAuthenticate()
  authenticate() {
    return { userId: 'u' };
  }

  @OnInit()
  init(session: Session) {
    SessionKeeper.session = session;
  }
}

describe('slow consumer (SPEC 7.4)', () => {
  const LIMIT = 64 * 1024;
  const CHUNK = Frame.binary(Buffer.alloc(16 * 1024, 7));
  let app: RunningApp;
  afterEach(() => app?.close());

  /** Delivers 16 KiB frames to a client that no longer reads until one is not written. */
  function fillUntilRefused(delivery: DeliveryService): number {
    for (let i = 1; i <= 4096; i++) {
      if (delivery.deliver({ user: 'u' }, CHUNK) === 0) return i;
    }
    throw new Error('64 MiB were written to a client that does not read');
  }

  it('closes a client that stops reading with 3004 "slow consumer" once its unsent bytes pass maxBackpressure; @OnTerminate gets "slowConsumer"', async () => {
    app = await startRiverside({ maxBackpressure: LIMIT }, [LimitsHandler]);
    const client = await app.connect('/');
    client.ws.pause();

    fillUntilRefused(app.app.get(DeliveryService));
    client.ws.resume();

    expect(await client.expectClose(undefined, 5000)).toEqual({ code: 3004, reason: 'slow consumer' });
    await eventually(() => expect(app.app.get(LimitsHandler).reasons).toEqual(['slowConsumer']));
  });

  it('with slowConsumer "drop", keeps the slow client open, counts the dropped messages, and delivers again once it reads', async () => {
    app = await startRiverside({ maxBackpressure: LIMIT, slowConsumer: 'drop' }, [LimitsHandler]);
    const client = await app.connect('/');
    const delivery = app.app.get(DeliveryService);
    const stats = app.app.get(RiversideStats);
    client.ws.pause();

    fillUntilRefused(delivery);
    expect(stats.droppedMessages).toBe(1);
    for (let i = 0; i < 3; i++) expect(delivery.deliver({ user: 'u' }, CHUNK)).toBe(0);
    expect(stats.droppedMessages).toBe(4);

    client.ws.resume();
    await eventually(() => expect(delivery.deliver({ user: 'u' }, { after: 'drain' })).toBe(1), 5000);
    for (;;) {
      const frame = await client.expectFrame();
      if (!frame.isBinary) {
        expect(JSON.parse(frame.data.toString())).toEqual({ after: 'drain' });
        break;
      }
    }
    expect(client.ws.readyState).toBe(client.ws.OPEN);
  });

  it("refuses a delivery per event-loop turn exactly when the server socket's unsent bytes would pass maxBackpressure, also while the client pings", async () => {
    SessionKeeper.forget();
    // Pings count against the flood limit: lifted, so that they can come every few turns.
    app = await startRiverside({ maxBackpressure: LIMIT, slowConsumer: 'drop', transmissionLimit: { capacity: Infinity } }, [SessionKeeper]);
    const client = await app.connect('/kept');
    const delivery = app.app.get(DeliveryService);
    await eventually(() => expect(SessionKeeper.session).not.toBeNull());
    const serverSocket = (connectionOf(SessionKeeper.session as Session) as unknown as { ws: WebSocket }).ws;
    client.ws.pause();

    // One broadcast-like delivery per turn (each a socket's only write of its turn), and a ping
    // from the client now and then, whose pong ws writes to the same socket.
    const decisions: { unsentBefore: number; written: boolean }[] = [];
    for (let turn = 0; turn < 4096 && decisions.filter((d) => !d.written).length < 3; turn++) {
      await new Promise((resolve) => setImmediate(resolve));
      if (turn % 3 === 0) client.ws.ping();
      const unsentBefore = serverSocket.bufferedAmount;
      decisions.push({ unsentBefore, written: delivery.deliver({ user: 'u' }, CHUNK) === 1 });
    }

    const refused = decisions.filter((d) => !d.written);
    const queuedBehind = decisions.filter((d) => d.written && d.unsentBefore > 0);
    expect(refused.length).toBe(3);
    expect(queuedBehind.length).toBeGreaterThan(0);
    for (const { unsentBefore, written } of decisions) {
      expect({ unsentBefore, written }).toEqual({ unsentBefore, written: unsentBefore === 0 || unsentBefore + CHUNK.data.length <= LIMIT });
    }
  });

  it('writes a single message larger than maxBackpressure to a client that keeps up', async () => {
    app = await startRiverside({ maxBackpressure: LIMIT }, [LimitsHandler]);
    const client = await app.connect('/');

    expect(app.app.get(DeliveryService).deliver({ user: 'u' }, Frame.binary(Buffer.alloc(2 * LIMIT, 1)))).toBe(1);

    expect((await client.expectFrame()).data.length).toBe(2 * LIMIT);
    expect(client.ws.readyState).toBe(client.ws.OPEN);
  });
});

describe('a client faster than its async handler (inbound backpressure)', () => {
  /** Holds every message until the test opens the gate, like a handler waiting on a slow database. */
  @RiversideHandler({ path: '/gated' })
  class GatedHandler {
    static open: () => void = () => {};
    static gate = new Promise<void>((resolve) => (GatedHandler.open = resolve));
    readonly handled: number[] = [];

    @OnMessage()
    async onMessage(message: Buffer) {
      await GatedHandler.gate;
      this.handled.push(message.readUInt32BE(0));
      return undefined;
    }
  }

  let app: RunningApp;
  afterEach(() => app?.close());

  it('stops reading the socket past maxBackpressure queued bytes, then handles every frame in order', async () => {
    GatedHandler.gate = new Promise<void>((resolve) => (GatedHandler.open = resolve));
    app = await startRiverside(
      { maxBackpressure: 256 * 1024, transmissionLimit: { capacity: Infinity }, codec: RawBinaryCodec },
      [GatedHandler],
    );
    const client = await app.connect('/gated');
    const frames = 200;
    for (let i = 0; i < frames; i++) {
      const frame = Buffer.alloc(256 * 1024);
      frame.writeUInt32BE(i, 0);
      client.sendRaw(frame, true);
    }
    // 50 MiB sent; the server stopped reading after ~256 KiB, so most of it waits on the client.
    await eventually(() => expect(client.ws.bufferedAmount).toBeGreaterThan(20 * 1024 * 1024));
    GatedHandler.open();
    const handler = app.app.get(GatedHandler);
    await eventually(() => expect(handler.handled).toHaveLength(frames), 10_000);
    expect(handler.handled).toEqual(Array.from({ length: frames }, (_, i) => i));
    expect(client.ws.readyState).toBe(client.ws.OPEN);
  });

  it('does not count the time it stopped reading as the client being idle', async () => {
    GatedHandler.gate = new Promise<void>((resolve) => (GatedHandler.open = resolve));
    app = await startRiverside(
      { idleTimeout: 200, maxBackpressure: 64 * 1024, transmissionLimit: { capacity: Infinity }, codec: RawBinaryCodec },
      [GatedHandler],
    );
    const client = await app.connect('/gated');
    for (let i = 0; i < 20; i++) client.sendRaw(Buffer.alloc(64 * 1024), true);
    await new Promise((resolve) => setTimeout(resolve, 600)); // three idle timeouts, all spent paused
    expect(client.ws.readyState).toBe(client.ws.OPEN);
    GatedHandler.open();
    await eventually(() => expect(app.app.get(GatedHandler).handled).toHaveLength(20));
  });
});

describe('timers at scale (SPEC 7.5)', () => {
  const CONNECTIONS = 500;
  let app: RunningApp;
  afterEach(() => {
    vi.restoreAllMocks();
    return app?.close();
  });

  async function connectMany(): Promise<TestClient[]> {
    const clients: TestClient[] = [];
    for (let batch = 0; batch < CONNECTIONS; batch += 100) {
      clients.push(...(await Promise.all(Array.from({ length: 100 }, () => app.connect('/')))));
    }
    return clients;
  }

  it(`closes ${CONNECTIONS} idle connections, every one with 3003, from the server's single sweep`, async () => {
    // Long enough that opening all of them on a loaded 2-core CI machine never outlasts it.
    app = await startRiverside({ idleTimeout: 4000 }, [LimitsHandler]);
    const clients = await connectMany();
    expect(app.app.get(RiversideStats).currentConnections).toBe(CONNECTIONS);

    const closes = await Promise.all(clients.map((client) => client.expectClose(undefined, 8000)));

    expect(closes.filter((close) => close.code === 3003)).toHaveLength(CONNECTIONS);
    await eventually(() => expect(app.app.get(RiversideStats).currentConnections).toBe(0));
  });

  it(`arms no timer per connection while ${CONNECTIONS} connections with idle and age limits open`, async () => {
    app = await startRiverside({ idleTimeout: 60_000, maxConnectionAge: 60_000 }, [LimitsHandler]);
    // Unref'd timers do not show in process.getActiveResourcesInfo(), so count the calls instead.
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    const setIntervalSpy = vi.spyOn(globalThis, 'setInterval');

    await connectMany();

    const armed = setTimeoutSpy.mock.calls.length + setIntervalSpy.mock.calls.length;
    vi.restoreAllMocks();
    expect(app.app.get(RiversideStats).currentConnections).toBe(CONNECTIONS);
    expect(armed).toBeLessThan(CONNECTIONS / 10);
  });
});

describe('maxConnections (SPEC 3.4, Riverside B8)', () => {
  let app: RunningApp;
  afterEach(() => app?.close());

  // Riverside answers with an empty body; here the body is the status text only (SPEC 3.3).
  it('with maxConnections 1, refuses a second connection with 503 and a status-text body while the first is open', async () => {
    app = await startRiverside({ maxConnections: 1 }, [LimitsHandler]);
    const first = await app.connect('/');

    const refused = await TestClient.expectRefused(app.url('/'));

    expect([refused.status, refused.body]).toEqual([503, 'Service Unavailable']);
    await first.close(1000);
    await eventually(() => expect(app.app.get(RiversideStats).currentConnections).toBe(0));
    await expect(app.connect('/')).resolves.toBeInstanceOf(TestClient);
  });

  it('admits exactly maxConnections out of a storm of concurrent handshakes, refuses the rest with 503 before authenticating, and counts back to zero', async () => {
    let authentications = 0;
    @RiversideHandler()
    class SlowAuth {
      @OnAuthenticate()
      async authenticate() {
        authentications++;
        await new Promise((resolve) => setTimeout(resolve, 30));
        return { userId: 'storm' };
      }
    }
    app = await startRiverside({ maxConnections: 10 }, [SlowAuth]);
    const stats = app.app.get(RiversideStats);

    const results = await Promise.allSettled(Array.from({ length: 40 }, () => app.connect('/')));

    const admitted = results.filter((r): r is PromiseFulfilledResult<TestClient> => r.status === 'fulfilled');
    const refusals = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    expect(admitted).toHaveLength(10);
    expect(refusals.every((e) => e instanceof HandshakeRefusedError && e.status === 503)).toBe(true);
    expect(refusals).toHaveLength(30);
    expect(authentications).toBe(10);
    expect([stats.currentConnections, stats.rejections[503]]).toEqual([10, 30]);

    await Promise.all(admitted.map((r) => r.value.close(1000)));
    await eventually(() => expect(stats.currentConnections).toBe(0));
    await expect(app.connect('/')).resolves.toBeInstanceOf(TestClient);
    expect([stats.currentConnections, stats.totalConnections]).toEqual([1, 11]);
  });
});
