import type { Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type AuthRequest,
  DeliveryService,
  OnAuthenticate,
  OnInfo,
  OnInit,
  OnMessage,
  OnTerminate,
  RiversideHandler,
  type Session,
  type TerminateReason,
} from 'nestjs-riverside';
import type { TestClient } from 'nestjs-riverside/testing';
import { eventually, type RunningApp, startRiverside } from '../support/riverside-app.js';

// SPEC 4 (handler lifecycle and sessions) and SPEC 8 (close codes and terminate reasons),
// through real sockets: what the client sees, and what the handler callbacks observed.

// ---- what the handlers observed ------------------------------------------------------------

/** Ordered notes from the handlers (and the test), to assert on interleavings. */
const events: string[] = [];
/** Every @OnTerminate call of every handler below. */
const terminations: { handler: string; reason: TerminateReason; session: Session }[] = [];
/** What @OnInfo received. */
const infos: unknown[] = [];
/** Results of session.send() calls made on a closed session. */
const lateSends: boolean[] = [];

/** The error the failing handlers throw, so a test can check @OnTerminate got this very one. */
const bug = new Error('handler bug');

interface Gate {
  readonly opened: Promise<void>;
  open(): void;
}
function gate(): Gate {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}
/** Held shut by a test until it wants an awaiting handler to go on. */
let handlerGate = gate();

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function terminationsOf(handler: string) {
  return terminations.filter((t) => t.handler === handler);
}

/** Waits for the one @OnTerminate of `handler` and returns its reason. */
async function terminateReasonOf(handler: string): Promise<TerminateReason> {
  await eventually(() => expect(terminationsOf(handler)).toHaveLength(1));
  return terminationsOf(handler)[0].reason;
}

/**
 * Resolves once the server has read every frame the client sent so far: ws answers a ping
 * while parsing the stream, so its pong comes after the frames before it were dispatched.
 */
function receivedByServer(client: TestClient): Promise<void> {
  return new Promise((resolve) => {
    client.ws.once('pong', () => resolve());
    client.ws.ping();
  });
}

function dropTcp(client: TestClient): void {
  (client.ws as unknown as { _socket: Socket })._socket.destroy();
}

// ---- handlers ------------------------------------------------------------------------------

/** Answers every frame with what it got; the "other connection" of the isolation tests. */
@RiversideHandler({ path: '/echo' })
class EchoHandler {
  @OnMessage()
  onMessage(message: unknown) {
    return { echo: message };
  }
}

@RiversideHandler({ path: '/slow-init' })
class SlowInitHandler {
  @OnInit()
  async onInit(session: Session<{ ready: boolean }>) {
    session.state = { ready: false };
    events.push('init started');
    await delay(100);
    session.state.ready = true;
    events.push('init finished');
  }

  @OnMessage()
  onMessage(message: unknown, session: Session<{ ready: boolean }>) {
    events.push(`message ${String(message)}`);
    return { message, initFinished: session.state.ready };
  }

  @OnTerminate()
  onTerminate(reason: TerminateReason, session: Session) {
    terminations.push({ handler: 'SlowInitHandler', reason, session });
    events.push('terminate');
  }
}

/** Joins a channel at init; @OnTerminate notes the channels it still sees. */
@RiversideHandler({ path: '/member' })
class MemberHandler {
  @OnAuthenticate()
  authenticate() {
    return { userId: 'member' };
  }

  @OnInit()
  onInit(session: Session) {
    session.join('room');
  }

  @OnTerminate()
  onTerminate(reason: TerminateReason, session: Session) {
    terminations.push({ handler: 'MemberHandler', reason, session });
    events.push(`channels at terminate: ${session.channels().join(',')}`);
  }
}

@RiversideHandler({ path: '/greeting' })
class GreetingHandler {
  @OnAuthenticate()
  authenticate() {
    return { userId: 'greeted' };
  }

  @OnInit()
  async onInit(session: Session) {
    events.push('init started');
    await handlerGate.opened;
    return { welcome: session.userId };
  }

  @OnMessage()
  onMessage(message: unknown) {
    return { echo: message };
  }
}

@RiversideHandler({ path: '/ordered' })
class OrderedHandler {
  @OnInit()
  onInit(session: Session<{ running: number }>) {
    session.state = { running: 0 };
  }

  /** Later frames wait less, so they would overtake earlier ones if handled concurrently. */
  @OnMessage()
  async onMessage(n: number, session: Session<{ running: number }>) {
    session.state.running++;
    const overlapped = session.state.running > 1;
    await delay(20 - n);
    session.state.running--;
    return { n, overlapped };
  }
}

@RiversideHandler({ path: '/gated' })
class GatedHandler {
  @OnMessage()
  async onMessage(message: { wait?: boolean }) {
    if (message.wait) await handlerGate.opened;
    return message;
  }
}

@RiversideHandler({ path: '/returns' })
class ReturnsHandler {
  @OnMessage()
  onMessage(message: { reply?: unknown; async?: boolean }) {
    return message.async ? Promise.resolve(message.reply) : message.reply;
  }
}

type TimerCommand =
  | { op: 'after'; ms: number; info: string }
  | { op: 'cancel-one'; ms: number }
  | { op: 'slow'; ms: number };

@RiversideHandler({ path: '/timers' })
class TimerHandler {
  @OnMessage()
  async onMessage(command: TimerCommand, session: Session) {
    switch (command.op) {
      case 'after':
        session.sendAfter(command.ms, command.info);
        return 'scheduled';
      case 'cancel-one':
        session.sendAfter(command.ms, 'cancelled').cancel();
        session.sendAfter(command.ms, 'kept');
        return 'scheduled';
      case 'slow':
        // Fires while this handler is still awaiting: it must wait its turn.
        session.sendAfter(0, 'info scheduled by the slow message');
        await delay(command.ms);
        return 'slow message done';
    }
  }

  @OnInfo()
  onInfo(info: unknown) {
    infos.push(info);
    return { info };
  }
}

/** Sends an info to its own session from inside @OnMessage (as a service it calls might). */
@RiversideHandler({ path: '/self-info' })
class SelfInfoHandler {
  constructor(private readonly delivery: DeliveryService) {}

  @OnMessage()
  async onMessage(message: string, session: Session) {
    this.delivery.info({ session: [session.userId, session.id] }, `info from ${message}`);
    await delay(10);
    return `reply to ${message}`;
  }

  @OnInfo()
  async onInfo(info: string) {
    await delay(1);
    return info;
  }
}

type LifecycleCommand =
  | { op: 'close'; code?: number; reason?: string }
  | { op: 'close-then-send' }
  | { op: 'close-invalid'; code: number; reason?: string }
  | { op: 'throw' }
  | { op: 'reject' }
  | { op: 'throw-in-info' }
  | { op: 'wait' }
  | { op: 'echo'; value: unknown };

@RiversideHandler({ path: '/lifecycle' })
class LifecycleHandler {
  @OnMessage()
  async onMessage(command: LifecycleCommand, session: Session) {
    switch (command.op) {
      case 'close':
        session.close(command.code, command.reason);
        return undefined;
      case 'close-then-send':
        session.close();
        lateSends.push(session.send('after close'));
        return undefined;
      case 'close-invalid':
        try {
          session.close(command.code, command.reason);
          return { closed: true };
        } catch (error) {
          return { threw: (error as Error).name };
        }
      case 'throw':
        throw bug;
      case 'reject':
        await Promise.resolve();
        throw bug;
      case 'throw-in-info':
        session.sendAfter(0, 'throw');
        return 'scheduled';
      case 'wait':
        events.push('message started');
        await handlerGate.opened;
        events.push('message settled');
        return 'done';
      case 'echo':
        return command.value;
      default:
        return undefined;
    }
  }

  @OnInfo()
  onInfo(info: unknown) {
    if (info === 'throw') throw bug;
  }

  @OnTerminate()
  onTerminate(reason: TerminateReason, session: Session) {
    terminations.push({ handler: 'LifecycleHandler', reason, session });
    events.push('terminate');
    lateSends.push(session.send('after terminate'));
  }
}

@RiversideHandler({ path: '/sync-throw' })
class SyncThrowHandler {
  @OnMessage()
  onMessage() {
    throw bug;
  }

  @OnTerminate()
  onTerminate(reason: TerminateReason, session: Session) {
    terminations.push({ handler: 'SyncThrowHandler', reason, session });
  }
}

@RiversideHandler({ path: '/init-throws' })
class InitThrowsHandler {
  @OnInit()
  onInit() {
    throw bug;
  }

  @OnMessage()
  onMessage() {
    events.push('InitThrowsHandler.onMessage');
  }

  @OnTerminate()
  onTerminate(reason: TerminateReason, session: Session) {
    terminations.push({ handler: 'InitThrowsHandler', reason, session });
  }
}

@RiversideHandler({ path: '/init-rejects' })
class InitRejectsHandler {
  @OnInit()
  async onInit() {
    await delay(10);
    throw bug;
  }

  @OnMessage()
  onMessage() {
    events.push('InitRejectsHandler.onMessage');
  }

  @OnTerminate()
  onTerminate(reason: TerminateReason, session: Session) {
    terminations.push({ handler: 'InitRejectsHandler', reason, session });
  }
}

@RiversideHandler({ path: '/terminate-throws' })
class TerminateThrowsHandler {
  @OnTerminate()
  onTerminate(reason: TerminateReason, session: Session) {
    terminations.push({ handler: 'TerminateThrowsHandler', reason, session });
    throw bug;
  }
}

@RiversideHandler({ path: '/terminate-rejects' })
class TerminateRejectsHandler {
  @OnTerminate()
  async onTerminate(reason: TerminateReason, session: Session) {
    terminations.push({ handler: 'TerminateRejectsHandler', reason, session });
    await delay(1);
    throw bug;
  }
}

@RiversideHandler({ path: '/slow-terminate' })
class SlowTerminateHandler {
  @OnMessage()
  async onMessage(message: { wait?: boolean }) {
    if (message.wait) {
      events.push('message started');
      await delay(150);
      events.push('message settled');
    }
    return 'done';
  }

  @OnTerminate()
  async onTerminate(reason: TerminateReason, session: Session) {
    terminations.push({ handler: 'SlowTerminateHandler', reason, session });
    await delay(100);
    events.push('terminate finished');
  }
}

@RiversideHandler({ path: '/session', subprotocols: ['chat.v1'] })
class SessionHandler {
  @OnAuthenticate()
  authenticate(req: AuthRequest) {
    return { userId: 42, state: { count: Number(req.queries.start ?? 0) } };
  }

  @OnMessage()
  onMessage(command: 'describe' | 'count', session: Session<{ count: number }>) {
    if (command === 'count') return ++session.state.count;
    return {
      userId: session.userId,
      userIdType: typeof session.userId,
      id: session.id,
      peer: session.peer,
      subprotocol: session.subprotocol,
      connectedAt: session.connectedAt.getTime(),
    };
  }

  @OnInfo()
  onInfo(_info: unknown, session: Session<{ count: number }>) {
    return { countSeenByInfo: session.state.count };
  }
}

const ALL_HANDLERS = [
  EchoHandler,
  SlowInitHandler,
  GreetingHandler,
  OrderedHandler,
  GatedHandler,
  ReturnsHandler,
  TimerHandler,
  SelfInfoHandler,
  LifecycleHandler,
  SyncThrowHandler,
  InitThrowsHandler,
  InitRejectsHandler,
  TerminateThrowsHandler,
  TerminateRejectsHandler,
  SlowTerminateHandler,
  SessionHandler,
  MemberHandler,
];

// ---- the tests -----------------------------------------------------------------------------

describe('handler lifecycle and sessions (SPEC 4, 8)', () => {
  let running: RunningApp | undefined;

  /** Shuts the app down inside a test (afterEach then has nothing left to close). */
  async function shutDown(): Promise<void> {
    const app = running;
    running = undefined;
    await app?.app.close();
  }

  /** A connection on another path that must not notice what happened to its neighbour. */
  async function expectUnaffected(bystander: TestClient): Promise<void> {
    bystander.send('still there?');
    expect(await bystander.expectMessage()).toEqual({ echo: 'still there?' });
  }

  beforeEach(async () => {
    events.length = 0;
    terminations.length = 0;
    infos.length = 0;
    lateSends.length = 0;
    handlerGate = gate();
    running = await startRiverside({}, ALL_HANDLERS);
  });

  afterEach(async () => {
    handlerGate.open();
    await running?.close();
    running = undefined;
    // SPEC 4.5 for every test above, shutdown included: no connection is terminated twice.
    const ids = terminations.map((t) => t.session.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  describe('@OnInit (SPEC 4.2)', () => {
    it('finishes an async @OnInit before any frame reaches @OnMessage; frames sent meanwhile are handled afterwards, in order', async () => {
      const client = await running!.connect('/slow-init');
      client.send(1);
      client.send(2);
      client.send(3);
      await receivedByServer(client);
      expect(events).toEqual(['init started']);

      expect(await client.expectMessages(3)).toEqual([
        { message: 1, initFinished: true },
        { message: 2, initFinished: true },
        { message: 3, initFinished: true },
      ]);
      expect(events).toEqual(['init started', 'init finished', 'message 1', 'message 2', 'message 3']);
    });

    it('sends the value returned from @OnInit as the first message, before replies to frames that arrived meanwhile', async () => {
      const client = await running!.connect('/greeting');
      await eventually(() => expect(events).toContain('init started'));
      client.send('early');
      await receivedByServer(client);
      handlerGate.open();

      expect(await client.expectMessage()).toEqual({ welcome: 'greeted' });
      expect(await client.expectMessage()).toEqual({ echo: 'early' });
    });

    it('holds back deliveries to the session until @OnInit is done', async () => {
      const client = await running!.connect('/greeting');
      await eventually(() => expect(events).toContain('init started'));
      running!.app.get(DeliveryService).deliver({ user: 'greeted' }, 'delivered during init');
      handlerGate.open();

      expect(await client.expectMessage()).toEqual({ welcome: 'greeted' });
      expect(await client.expectMessage()).toBe('delivered during init');
    });
  });

  describe('@OnMessage (SPEC 4.3)', () => {
    it('handles the frames of one connection one at a time, in arrival order, when the handler is async with varying delays', async () => {
      const client = await running!.connect('/ordered');
      for (let n = 0; n < 20; n++) client.send(n);

      const replies = await client.expectMessages(20);
      expect(replies).toEqual(Array.from({ length: 20 }, (_, n) => ({ n, overlapped: false })));
    });

    it('does not hold up other connections while one connection awaits its handler', async () => {
      const waiting = await running!.connect('/gated');
      const other = await running!.connect('/gated');
      waiting.send({ wait: true });
      waiting.send({ after: 'the wait' });
      await receivedByServer(waiting);

      other.send({ n: 1 });
      expect(await other.expectMessage()).toEqual({ n: 1 });

      handlerGate.open();
      expect(await waiting.expectMessages(2)).toEqual([{ wait: true }, { after: 'the wait' }]);
    });

    it('sends a returned value back to the sender, and nothing when the handler returns undefined', async () => {
      const client = await running!.connect('/returns');
      client.send({});
      client.send({ reply: 'second' });

      // Had the first frame produced a frame, it would arrive first.
      expect(await client.expectMessage()).toBe('second');
    });

    it('sends the value an async handler resolves with, and nothing when it resolves with undefined', async () => {
      const client = await running!.connect('/returns');
      client.send({ async: true });
      client.send({ async: true, reply: { resolved: true } });

      expect(await client.expectMessage()).toEqual({ resolved: true });
    });

    it('sends null when the handler returns null (only undefined means "no reply")', async () => {
      const client = await running!.connect('/returns');
      client.send({ reply: null });

      const frame = await client.expectFrame();
      expect(frame.data.toString()).toBe('null');
    });
  });

  describe('@OnInfo and session.sendAfter (SPEC 4.1, 4.4)', () => {
    it('delivers the info of session.sendAfter to @OnInfo, whose returned value is sent to the session', async () => {
      const client = await running!.connect('/timers');
      client.send({ op: 'after', ms: 20, info: 'tick' });

      expect(await client.expectMessages(2)).toEqual(['scheduled', { info: 'tick' }]);
      expect(infos).toEqual(['tick']);
    });

    it('never delivers an info whose sendAfter was cancelled', async () => {
      const client = await running!.connect('/timers');
      client.send({ op: 'cancel-one', ms: 20 });

      // Both timers had the same delay and the cancelled one was set first: it would come first.
      expect(await client.expectMessages(2)).toEqual(['scheduled', { info: 'kept' }]);
      expect(infos).toEqual(['kept']);
    });

    it('clears pending sendAfter timers when the connection ends', async () => {
      const closing = await running!.connect('/timers');
      closing.send({ op: 'after', ms: 60, info: 'to the closed connection' });
      expect(await closing.expectMessage()).toBe('scheduled');
      await closing.close(1000);

      // Set later with the same delay, this timer fires after the first one would have.
      const witness = await running!.connect('/timers');
      witness.send({ op: 'after', ms: 60, info: 'to the open connection' });
      expect(await witness.expectMessages(2)).toEqual(['scheduled', { info: 'to the open connection' }]);
      expect(infos).toEqual(['to the open connection']);
    });

    it('handles an info in turn with frames: one that fires while an async @OnMessage runs waits for it', async () => {
      const client = await running!.connect('/timers');
      client.send({ op: 'slow', ms: 100 });

      expect(await client.expectMessages(2)).toEqual([
        'slow message done',
        { info: 'info scheduled by the slow message' },
      ]);
    });

    it('handles an info that @OnMessage sends to its own session after that @OnMessage, and before the next frame', async () => {
      const client = await running!.connect('/self-info');
      client.send('a');
      client.send('b');

      expect(await client.expectMessages(4)).toEqual(['reply to a', 'info from a', 'reply to b', 'info from b']);
    });
  });

  describe('@OnTerminate and the close-code table (SPEC 4.5, 8)', () => {
    it('client closes with code 4000 "x": the client sees 4000 "x" echoed, terminate gets { kind: "remote", code: 4000, reason: "x" }', async () => {
      const client = await running!.connect('/lifecycle');

      expect(await client.close(4000, 'x')).toEqual({ code: 4000, reason: 'x' });
      expect(await terminateReasonOf('LifecycleHandler')).toEqual({ kind: 'remote', code: 4000, reason: 'x' });
    });

    it('client closes without a code: the client sees 1005, terminate gets { kind: "remote", code: 1005 }', async () => {
      const client = await running!.connect('/lifecycle');

      expect((await client.close()).code).toBe(1005);
      expect(await terminateReasonOf('LifecycleHandler')).toEqual({ kind: 'remote', code: 1005, reason: '' });
    });

    it('TCP connection dropped without a close frame: terminate gets { kind: "error", error }', async () => {
      const client = await running!.connect('/lifecycle');
      dropTcp(client);

      expect(await terminateReasonOf('LifecycleHandler')).toEqual({ kind: 'error', error: expect.any(Error) });
    });

    it('session.close(): the client sees 1000 with no reason, terminate gets "stop"', async () => {
      const client = await running!.connect('/lifecycle');
      client.send({ op: 'close' });

      expect(await client.expectClose(1000)).toEqual({ code: 1000, reason: '' });
      expect(await terminateReasonOf('LifecycleHandler')).toBe('stop');
    });

    it('session.close(4001, "bye"): the client sees 4001 "bye", terminate gets "stop"', async () => {
      const client = await running!.connect('/lifecycle');
      client.send({ op: 'close', code: 4001, reason: 'bye' });

      expect(await client.expectClose(4001)).toEqual({ code: 4001, reason: 'bye' });
      expect(await terminateReasonOf('LifecycleHandler')).toBe('stop');
    });

    it('runs @OnTerminate only after an in-flight async handler has settled', async () => {
      const client = await running!.connect('/lifecycle');
      client.send({ op: 'wait' });
      await eventually(() => expect(events).toContain('message started'));
      await client.close(1000);
      await eventually(() => expect(running!.server.stats.currentConnections).toBe(0));
      expect(terminationsOf('LifecycleHandler')).toHaveLength(0);

      handlerGate.open();
      await eventually(() => expect(events).toEqual(['message started', 'message settled', 'terminate']));
      expect(await terminateReasonOf('LifecycleHandler')).toEqual({ kind: 'remote', code: 1000, reason: '' });
    });

    it('app shutdown: the client sees 1001 "server shutting down", terminate gets "shutdown"', async () => {
      const client = await running!.connect('/lifecycle');
      await shutDown();

      expect(await client.expectClose(1001)).toEqual({ code: 1001, reason: 'server shutting down' });
      expect(terminationsOf('LifecycleHandler').map((t) => t.reason)).toEqual(['shutdown']);
    });

    it('app shutdown awaits an async @OnTerminate: it has finished when app.close() resolves', async () => {
      await running!.connect('/slow-terminate');
      await shutDown();

      expect(events).toEqual(['terminate finished']);
    });

    it('app shutdown during an async @OnMessage awaits the handler and then @OnTerminate before app.close() resolves', async () => {
      const client = await running!.connect('/slow-terminate');
      client.send({ wait: true });
      await eventually(() => expect(events).toContain('message started'));
      await shutDown();

      expect(events).toEqual(['message started', 'message settled', 'terminate finished']);
      expect(terminationsOf('SlowTerminateHandler').map((t) => t.reason)).toEqual(['shutdown']);
    });

    it('app shutdown while an async @OnInit runs: @OnTerminate gets "shutdown" once @OnInit is done, before app.close() resolves', async () => {
      await running!.connect('/slow-init');
      await shutDown();

      expect(events).toEqual(['init started', 'init finished', 'terminate']);
      expect(terminationsOf('SlowInitHandler').map((t) => t.reason)).toEqual(['shutdown']);
    });

    it("removes the session's registrations and channels after @OnTerminate, which can still read them", async () => {
      const delivery = running!.app.get(DeliveryService);
      const client = await running!.connect('/member');
      await eventually(() => expect(delivery.localMembers('room')).toHaveLength(1));
      await client.close(1000);
      await terminateReasonOf('MemberHandler');

      expect(events).toEqual(['channels at terminate: room']);
      expect(delivery.localMembers('room')).toEqual([]);
      expect(delivery.deliver({ user: 'member' }, 'anyone?')).toBe(0);
      expect(delivery.deliver({ channel: 'room' }, 'anyone?')).toBe(0);
    });

    it('logs an exception thrown by @OnTerminate and swallows it: the server goes on serving', async () => {
      const client = await running!.connect('/terminate-throws');
      await client.close(1000);
      await terminateReasonOf('TerminateThrowsHandler');

      await eventually(() =>
        expect(running!.logger.errors()).toEqual([
          expect.stringContaining('TerminateThrowsHandler.onTerminate() threw: handler bug'),
        ]),
      );
      await expectUnaffected(await running!.connect('/echo'));
    });

    it('logs a rejection of an async @OnTerminate and swallows it', async () => {
      const client = await running!.connect('/terminate-rejects');
      await client.close(1000);

      await eventually(() =>
        expect(running!.logger.errors()).toEqual([
          expect.stringContaining('TerminateRejectsHandler.onTerminate() threw: handler bug'),
        ]),
      );
      await expectUnaffected(await running!.connect('/echo'));
    });
  });

  describe('a handler that throws (SPEC 4.6)', () => {
    it.each([
      ['@OnMessage throws', '/sync-throw', 'SyncThrowHandler', 'SyncThrowHandler.onMessage()', 'go'],
      ['@OnMessage rejects', '/lifecycle', 'LifecycleHandler', 'LifecycleHandler.onMessage()', { op: 'reject' }],
      ['@OnInfo throws', '/lifecycle', 'LifecycleHandler', 'LifecycleHandler.onInfo()', { op: 'throw-in-info' }],
    ])(
      '%s: the client sees 1011, terminate gets { kind: "error", error }, the error is logged once with class and method',
      async (_case, path, handler, label, frame) => {
        const client = await running!.connect(path);
        client.send(frame);

        expect(await client.expectClose(1011)).toEqual({ code: 1011, reason: 'internal error' });
        expect(await terminateReasonOf(handler)).toEqual({ kind: 'error', error: bug });
        expect(running!.logger.errors()).toEqual([expect.stringContaining(`${label} threw: handler bug`)]);
      },
    );

    it.each([
      ['throws', '/init-throws', 'InitThrowsHandler'],
      ['rejects', '/init-rejects', 'InitRejectsHandler'],
    ])(
      '@OnInit %s: the client sees 1011, terminate gets { kind: "error", error }, no frame reaches @OnMessage',
      async (_case, path, handler) => {
        const client = await running!.connect(path);
        client.send('too early');

        expect(await client.expectClose(1011)).toEqual({ code: 1011, reason: 'internal error' });
        expect(await terminateReasonOf(handler)).toEqual({ kind: 'error', error: bug });
        expect(running!.logger.errors()).toEqual([expect.stringContaining(`${handler}.onInit() threw: handler bug`)]);
        expect(events).toEqual([]);
      },
    );

    it('closes only the failing connection: other connections, on the same and other paths, carry on', async () => {
      const neighbour = await running!.connect('/lifecycle');
      const elsewhere = await running!.connect('/echo');
      const failing = await running!.connect('/lifecycle');
      failing.send({ op: 'throw' });
      await failing.expectClose(1011);

      neighbour.send({ op: 'echo', value: 'alive' });
      expect(await neighbour.expectMessage()).toBe('alive');
      await expectUnaffected(elsewhere);
      expect(terminationsOf('LifecycleHandler')).toHaveLength(1);
    });
  });

  describe('Session (SPEC 4.1)', () => {
    it('userId is the authenticated id as a string, id a random 40-hex id when auth names none', async () => {
      const client = await running!.connect('/session');
      client.send('describe');

      const seen = (await client.expectMessage()) as { userId: string; userIdType: string; id: string };
      expect(seen.userId).toBe('42');
      expect(seen.userIdType).toBe('string');
      expect(seen.id).toMatch(/^[0-9a-f]{40}$/);
    });

    it('ids differ between two connections of one user', async () => {
      const first = await running!.connect('/session');
      const second = await running!.connect('/session');
      first.send('describe');
      second.send('describe');

      const [a, b] = [(await first.expectMessage()) as { id: string }, (await second.expectMessage()) as { id: string }];
      expect(a.id).not.toBe(b.id);
    });

    it("peer is the client's address and port", async () => {
      const client = await running!.connect('/session');
      client.send('describe');

      const { peer } = (await client.expectMessage()) as { peer: { address: string; port: number } };
      const local = (client.ws as unknown as { _socket: Socket })._socket;
      expect(peer).toMatchObject({ address: '127.0.0.1', port: local.localPort });
    });

    it('subprotocol is the one selected in the handshake, and null when none was offered', async () => {
      const withProtocol = await running!.connect('/session', { subprotocols: ['chat.v1'] });
      const without = await running!.connect('/session');
      withProtocol.send('describe');
      without.send('describe');

      expect(await withProtocol.expectMessage()).toMatchObject({ subprotocol: 'chat.v1' });
      expect(await without.expectMessage()).toMatchObject({ subprotocol: null });
    });

    it('connectedAt is when the WebSocket was accepted', async () => {
      const before = Date.now();
      const client = await running!.connect('/session');
      const after = Date.now();
      client.send('describe');

      const { connectedAt } = (await client.expectMessage()) as { connectedAt: number };
      expect(connectedAt).toBeGreaterThanOrEqual(before);
      expect(connectedAt).toBeLessThanOrEqual(after);
    });

    it("state starts as the auth result's state and keeps the handler's changes across callbacks", async () => {
      const client = await running!.connect('/session', { query: { start: 10 } });
      client.send('count');
      client.send('count');

      expect(await client.expectMessages(2)).toEqual([11, 12]);
    });

    it('state is per connection: two sessions of one user do not share it', async () => {
      const first = await running!.connect('/session', { query: { start: 0 } });
      const second = await running!.connect('/session', { query: { start: 100 } });
      first.send('count');
      second.send('count');
      first.send('count');

      expect(await first.expectMessages(2)).toEqual([1, 2]);
      expect(await second.expectMessage()).toBe(101);
    });

    it('send() after close() returns false, does not throw, and writes nothing', async () => {
      const client = await running!.connect('/lifecycle');
      client.send({ op: 'close-then-send' });

      await client.expectClose(1000);
      await terminateReasonOf('LifecycleHandler');
      // The first from the handler right after close(), the second from @OnTerminate.
      expect(lateSends).toEqual([false, false]);
      expect(running!.logger.errors()).toEqual([]);
    });

    it.each([
      ['code 999', 999, ''],
      ['code 1001 (reserved for the server)', 1001, ''],
      ['code 1011 (reserved for the server)', 1011, ''],
      ['code 2999', 2999, ''],
      ['code 5000', 5000, ''],
      ['code 3000.5', 3000.5, ''],
      ['a reason over 123 bytes', 1000, 'x'.repeat(124)],
    ])('close() with %s throws a RangeError and leaves the connection open', async (_case, code, reason) => {
      const client = await running!.connect('/lifecycle');
      client.send({ op: 'close-invalid', code, reason });

      expect(await client.expectMessage()).toEqual({ threw: 'RangeError' });
      client.send({ op: 'echo', value: 'still open' });
      expect(await client.expectMessage()).toBe('still open');
    });
  });
});

describe('shutdownTimeout bounds what shutdown waits for (SPEC 4.5, 14.1)', () => {
  @RiversideHandler({ path: '/hung' })
  class HungTerminateHandler {
    @OnTerminate()
    terminate() {
      return new Promise(() => {
        // never settles: a cleanup stuck on a dead dependency
      });
    }
  }

  it('resolves app.close() after shutdownTimeout even when an @OnTerminate never settles, and warns', async () => {
    const app = await startRiverside({ shutdownTimeout: 200 }, [HungTerminateHandler]);
    const client = await app.connect('/hung');
    const started = Date.now();
    await app.app.close(); // the Nest app itself: RunningApp.close() would cut the test's clients first
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await client.expectClose(1001)).toEqual({ code: 1001, reason: 'server shutting down' });
    expect(app.logger.entries.filter((entry) => entry.level === 'warn').map((entry) => entry.message)).toContain(
      '1 @OnTerminate callback(s) still running after shutdownTimeout',
    );
  });
});
