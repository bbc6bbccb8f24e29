import 'reflect-metadata';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DeliveryService,
  Frame,
  HandlerTimeoutError,
  OnAuthenticate,
  OnInfo,
  OnInit,
  OnMessage,
  OnTerminate,
  RawBinaryCodec,
  RiversideHandler,
  RiversideStats,
  type AuthRequest,
  type Session,
  type TerminateReason,
} from 'nestjs-riverside';
import { MemoryBus, MemoryBusTransport } from 'nestjs-riverside/testing';
import { eventually, type RunningApp, startRiverside } from '../support/riverside-app.js';

// A full collection on demand, to measure what is still reachable (not what the GC left lying).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function collect(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    // FinalizationRegistry callbacks run as tasks after the collection.
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const never = new Promise<never>(() => {});

/** `{ hang: true }` never settles, like a handler awaiting a database reply that was lost. */
@RiversideHandler({ path: '/hung' })
class HungHandler {
  static readonly terminations: { reason: TerminateReason; at: number; user: string }[] = [];
  static started = 0;
  static release: (value: unknown) => void = () => {};

  @OnAuthenticate()
  authenticate(req: AuthRequest) {
    return { userId: String(req.queries.user ?? 'u') };
  }

  @OnInit()
  init(session: Session) {
    session.join('room');
  }

  @OnMessage()
  onMessage(message: { hang?: boolean; late?: boolean }) {
    if (message.hang) {
      HungHandler.started++;
      return never;
    }
    // Settles when the test says so, long after the connection was given up on.
    if (message.late) return new Promise((resolve) => (HungHandler.release = resolve));
    return { echo: message };
  }

  @OnInfo()
  onInfo(info: unknown) {
    return { info };
  }

  @OnTerminate()
  terminate(reason: TerminateReason, session: Session) {
    HungHandler.terminations.push({ reason, at: performance.now(), user: session.userId });
  }
}

function timeoutOf(reason: TerminateReason): HandlerTimeoutError {
  expect(reason).toMatchObject({ kind: 'error', error: expect.any(HandlerTimeoutError) });
  return (reason as { error: Error }).error as HandlerTimeoutError;
}

function reset(): void {
  HungHandler.terminations.length = 0;
  HungHandler.started = 0;
}

describe('a callback that never settles (handlerTimeout, SPEC 4.5)', () => {
  let app: RunningApp;
  afterEach(() => app?.close());

  it('after the client leaves, @OnTerminate runs within handlerTimeout with a HandlerTimeoutError, and the session is released', async () => {
    reset();
    const transport = new MemoryBusTransport(new MemoryBus(), 'hung');
    app = await startRiverside({ handlerTimeout: 300, transport }, [HungHandler]);
    const delivery = app.app.get(DeliveryService);
    const client = await app.connect('/hung', { query: { user: 'stuck' } });
    await eventually(() => expect(delivery.localMembers('room')).toHaveLength(1));
    await eventually(() => expect(transport.topics).toContain('user:stuck'));
    client.send({ hang: true });
    await eventually(() => expect(HungHandler.started).toBe(1));

    await client.close(1000);
    const leftAt = performance.now();
    await eventually(() => expect(HungHandler.terminations).toHaveLength(1), 3000);

    const [{ reason, at }] = HungHandler.terminations;
    // 300 ms, plus at most one sweep interval (a tenth of the shortest limit) and scheduling.
    expect(at - leftAt).toBeGreaterThanOrEqual(290);
    expect(at - leftAt).toBeLessThan(300 + 30 + 250);
    expect(reason).toMatchObject({ kind: 'error' });
    const error = (reason as { error: Error }).error;
    expect(error).toBeInstanceOf(HandlerTimeoutError);
    expect(error).toMatchObject({
      callback: 'HungHandler.onMessage()',
      timeout: 300,
      closeReason: { kind: 'remote', code: 1000, reason: '' },
    });
    expect(delivery.localMembers('room')).toEqual([]);
    expect(delivery.deliver({ user: 'stuck' }, 'anyone?')).toBe(0);
    // Its broker subscriptions (user, session, channel) are released too; the node's presence topics stay.
    await eventually(() => expect(transport.topics.filter((topic) => !topic.startsWith('presence:'))).toEqual([]));
    expect(transport.topics).toContain('presence:cluster');
    expect(app.app.get(RiversideStats).terminations).toMatchObject({ handlerTimeout: 1 });
  });

  it('discards the late result of a callback it gave up on: nothing is sent, @OnTerminate ran once', async () => {
    reset();
    app = await startRiverside({ handlerTimeout: 100 }, [HungHandler]);
    const client = await app.connect('/hung');
    client.send({ late: true });
    await eventually(() => expect(HungHandler.release).not.toBe(undefined));
    await client.close(1000);
    await eventually(() => expect(HungHandler.terminations).toHaveLength(1));

    HungHandler.release({ too: 'late' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(HungHandler.terminations).toHaveLength(1);
    expect(app.logger.errors()).toEqual([]);
  });

  it('bounds the infos queued behind a hung callback (3004), and heap returns to baseline once it terminates', async () => {
    reset();
    app = await startRiverside({ handlerTimeout: 200 }, [HungHandler]);
    const delivery = app.app.get(DeliveryService);
    const client = await app.connect('/hung', { query: { user: 'busy' } });
    client.send({ hang: true });
    await eventually(() => expect(HungHandler.started).toBe(1));
    await collect();
    const baseline = process.memoryUsage().heapUsed;

    let reached = 0;
    for (let i = 0; i < 200_000; i++) reached += delivery.info({ user: 'busy' }, { n: i, text: `info number ${i}` });

    expect(reached).toBeLessThan(200_000);
    expect(await client.expectClose(3004)).toEqual({ code: 3004, reason: 'slow consumer' });
    await eventually(() => expect(HungHandler.terminations).toHaveLength(1), 3000);
    expect(timeoutOf(HungHandler.terminations[0].reason).closeReason).toBe('slowConsumer');
    await collect();
    expect(process.memoryUsage().heapUsed - baseline).toBeLessThan(4 * 1024 * 1024);
  });

  it('app shutdown with hung callbacks finishes within shutdownTimeout, and every @OnTerminate ran', async () => {
    reset();
    app = await startRiverside({ shutdownTimeout: 500, handlerTimeout: 30_000 }, [HungHandler]);
    const clients = await Promise.all(['a', 'b', 'c', 'd'].map((user) => app.connect('/hung', { query: { user } })));
    for (const client of clients.slice(0, 3)) client.send({ hang: true });
    await eventually(() => expect(HungHandler.started).toBe(3));

    const started = performance.now();
    await app.app.close();
    expect(performance.now() - started).toBeLessThan(500 + 300);
    expect(HungHandler.terminations.map((t) => t.user).sort()).toEqual(['a', 'b', 'c', 'd']);
    const timedOut = HungHandler.terminations.filter((t) => typeof t.reason === 'object' && t.reason.kind === 'error');
    expect(timedOut.map((t) => timeoutOf(t.reason).closeReason)).toEqual([
      'shutdown',
      'shutdown',
      'shutdown',
    ]);
  });
});

describe('what waits for a busy connection is bounded', () => {
  /** @OnInit never finishes: deliveries to the session are held back. */
  @RiversideHandler({ path: '/init-hangs' })
  class InitHangsHandler {
    @OnAuthenticate()
    authenticate() {
      return { userId: 'held' };
    }

    @OnInit()
    init() {
      return never;
    }
  }

  let app: RunningApp;
  afterEach(() => app?.close());

  const CHUNK = Frame.binary(Buffer.alloc(16 * 1024, 1));

  it('closes with 3004 once deliveries held during @OnInit pass maxBackpressure bytes', async () => {
    app = await startRiverside({ maxBackpressure: 64 * 1024, shutdownTimeout: 200 }, [InitHangsHandler]);
    const client = await app.connect('/init-hangs');
    const delivery = app.app.get(DeliveryService);
    let held = 0;
    for (let i = 0; i < 100; i++) held += delivery.deliver({ user: 'held' }, CHUNK);
    expect(held).toBeLessThanOrEqual(4);
    expect(await client.expectClose(3004)).toEqual({ code: 3004, reason: 'slow consumer' });
  });

  it("with slowConsumer 'drop', drops and counts what does not fit, and keeps the connection", async () => {
    app = await startRiverside({ shutdownTimeout: 200, slowConsumer: 'drop', maxQueuedMessages: 10 }, [
      InitHangsHandler,
    ]);
    const client = await app.connect('/init-hangs');
    const delivery = app.app.get(DeliveryService);
    const stats = app.app.get(RiversideStats);
    let held = 0;
    for (let i = 0; i < 100; i++) held += delivery.deliver({ user: 'held' }, 'small');
    expect(held).toBe(10);
    expect(stats.droppedMessages).toBe(90);
    for (let i = 0; i < 100; i++) delivery.info({ user: 'held' }, i);
    expect(stats.droppedMessages).toBe(190);
    await client.expectNoMessage(100);
    expect(client.ws.readyState).toBe(client.ws.OPEN);
  });
});

describe('many small frames for a busy handler', () => {
  /** Holds every frame until the test opens the gate. */
  @RiversideHandler({ path: '/gate' })
  class GateHandler {
    static open: () => void = () => {};
    static readonly handled: number[] = [];

    @OnMessage()
    async onMessage(message: { n: number }) {
      await new Promise<void>((resolve) => (GateHandler.open = resolve));
      GateHandler.handled.push(message.n);
      GateHandler.open = () => {};
      return undefined;
    }
  }

  let app: RunningApp;
  afterEach(() => app?.close());

  it('stops reading the socket past maxQueuedMessages queued frames (the pause is not idleness), then handles every one in order', async () => {
    app = await startRiverside(
      { maxQueuedMessages: 10, idleTimeout: 200, transmissionLimit: { capacity: Infinity }, shutdownTimeout: 200 },
      [GateHandler],
    );
    const client = await app.connect('/gate');
    for (let n = 0; n < 50; n++) client.send({ n });
    // Three idle timeouts: a connection that were merely silent would be closed with 3003.
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(client.ws.readyState).toBe(client.ws.OPEN);
    while (GateHandler.handled.length < 50) {
      GateHandler.open();
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(GateHandler.handled).toEqual(Array.from({ length: 50 }, (_, n) => n));
  });
});

describe('the inbound queue releases handled frames', () => {
  /** Takes 1 ms per frame; tracks which of the Buffers it handled are still reachable. */
  @RiversideHandler({ path: '/slow' })
  class SlowHandler {
    static live = 0;
    static handled = 0;
    static maxLive = 0;
    private static readonly registry = new FinalizationRegistry<void>(() => SlowHandler.live--);

    @OnMessage()
    async onMessage(message: Buffer) {
      SlowHandler.live++;
      SlowHandler.handled++;
      SlowHandler.registry.register(message, undefined);
      await new Promise((resolve) => setTimeout(resolve, 1));
      if (SlowHandler.handled % 250 === 0) {
        // Measured from the handler, while later frames are still queued behind it.
        await collect();
        SlowHandler.maxLive = Math.max(SlowHandler.maxLive, SlowHandler.live);
      }
      return undefined;
    }
  }

  let app: RunningApp;
  afterEach(() => app?.close());

  it('keeps O(window) Buffers alive for 2,000 pipelined frames through a 1 ms async handler', async () => {
    app = await startRiverside({ transmissionLimit: { capacity: Infinity }, codec: RawBinaryCodec }, [SlowHandler]);
    const client = await app.connect('/slow');
    for (let i = 0; i < 2000; i++) client.sendRaw(Buffer.alloc(1024, i % 256), true);
    await eventually(() => expect(SlowHandler.handled).toBe(2000), 12_000);
    // Handled frames no longer referenced by the queue: a few at most (the one in hand, GC timing).
    expect(SlowHandler.maxLive).toBeLessThan(20);
  }, 20_000);
});
