import type { Logger } from '@nestjs/common';
import type { WebSocket } from 'ws';
import type { PeerAddress } from '../auth/auth-request.js';
import { INVALID_MESSAGE } from '../codec/codec.interface.js';
import { Frame, FrameList } from '../codec/frame.js';
import { encodeWith } from '../delivery/encoded-message.js';
import { OutboundFrame, SEND_BINARY, SEND_TEXT } from '../delivery/outbound-frame.js';
import type { SessionRegistry } from '../delivery/session-registry.js';
import type { HandlerDefinition } from '../handler/handler-definition.js';
import { errorFrameOf } from '../handler/error-frame.js';
import { isObservableLike, type ObservableLike, type ObservableReply, sendEach } from '../handler/observable-reply.js';
import type { ResolvedRiversideOptions } from '../module/riverside-options.resolver.js';
import type { RiversideStats } from '../stats/riverside-stats.js';
import { CLOSE_FRAMES } from './close-codes.js';
import { type ScheduledInfo, Session, type SessionConnection } from './session.js';
import { type TerminateReason, terminateReasonName } from './terminate-reason.js';
import { TransmissionWindow } from './transmission-window.js';

/** What a connection needs from the server that accepted it. */
export interface ConnectionHost {
  readonly options: ResolvedRiversideOptions;
  readonly stats: RiversideStats;
  readonly registry: SessionRegistry;
  readonly logger: Logger;
  /** Monotonic milliseconds. */
  now(): number;
  /** The socket is gone: release its slot. */
  connectionClosed(connection: Connection): void;
  /** @OnTerminate has been called (its Promise, if any, is tracked): shutdown may go on. */
  connectionTerminated(connection: Connection): void;
  /** An async @OnTerminate is running; shutdown waits for it (bounded). */
  trackTermination(pending: Promise<unknown>): void;
}

export interface ConnectionIdentity {
  readonly userId: string;
  readonly sessionId: string;
  readonly peer: PeerAddress;
  readonly subprotocol: string | null;
  readonly state: unknown;
}

/** The connection is a property of its socket, so ws listeners can be shared functions. */
const kConnection = Symbol('riverside.connection');

// Lifecycle states, in order: a connection only moves forward.
const INITIALIZING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

// Tasks queued while a callback is in flight; the queue is flat: [kind, a, b, kind, a, b...].
const TASK_FRAME = 0;
const TASK_INFO = 1;

/** The TCP connection ended without a close frame. */
export class ConnectionLostError extends Error {
  constructor() {
    super('connection lost without a close frame');
    this.name = 'ConnectionLostError';
  }
}

/** What a queued frame costs beyond its payload, so that empty frames are bounded too. */
const QUEUED_FRAME_OVERHEAD = 64;

const NOTHING_SCHEDULED: ScheduledInfo = Object.freeze({ cancel() {} });

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as PromiseLike<unknown>).then === 'function';
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * One accepted WebSocket and its handler: the frame path (limit -> decode -> call -> encode),
 * per-connection ordering, and exactly-once termination.
 *
 * Ordering: while a callback's Promise is pending (@OnInit included), later frames and infos
 * wait in a queue that exists only then, and deliveries from elsewhere wait until @OnInit is
 * done. Per frame, nothing is allocated beyond what the codec and the handler allocate.
 */
export class Connection implements SessionConnection {
  readonly session: Session;
  /** Channels this connection is in; owned by the SessionRegistry. */
  joined: Set<string> | null = null;
  /** Last inbound activity (frame, ping or pong), for the idle sweep. */
  lastSeen: number;
  /** When @OnInit finished, for the max-age sweep; 0 while initializing. */
  openedAt = 0;

  private state = INITIALIZING;
  private busy = true;
  private busyLabel: string;
  private queue: unknown[] | null = null;
  private queueHead = 0;
  private pendingWrites: OutboundFrame[] | null = null;
  private closeReason: TerminateReason | null = null;
  private socketError: Error | null = null;
  private terminatePending = false;
  private terminated = false;
  private readonly window: TransmissionWindow;
  private queuedBytes = 0;
  /** The socket is not read while too much waits in the queue (see queueFrame). */
  readPaused = false;
  private timers: Set<NodeJS.Timeout> | null = null;
  /** A returned Observable being sent; unsubscribed when the connection closes. */
  private stream: ObservableReply | null = null;

  constructor(
    readonly ws: WebSocket,
    readonly handler: HandlerDefinition,
    private readonly host: ConnectionHost,
    identity: ConnectionIdentity,
  ) {
    const now = host.now();
    this.lastSeen = now;
    this.window = new TransmissionWindow(now);
    this.busyLabel = handler.labels.init;
    this.session = new Session(
      this,
      identity.userId,
      identity.sessionId,
      identity.peer,
      identity.subprotocol,
      identity.state,
      new Date(),
    );
    (ws as unknown as Record<symbol, Connection>)[kConnection] = this;
    ws.on('message', onSocketMessage);
    ws.on('ping', onSocketPing);
    ws.on('pong', onSocketPong);
    ws.on('error', onSocketError);
    ws.on('close', onSocketClose);
  }

  get isOpen(): boolean {
    return this.state <= OPEN && this.ws.readyState === 1;
  }

  /** Runs @OnInit; frames that arrive meanwhile wait in order. */
  start(): void {
    this.debug('connected');
    const init = this.handler.init;
    if (init === null) {
      this.settle(undefined);
      return;
    }
    let result: unknown;
    try {
      result = init(this.session);
    } catch (error) {
      this.fail(error, this.handler.labels.init);
      this.settle(undefined);
      return;
    }
    if (isPromiseLike(result)) this.awaitCallback(result);
    else this.settle(result);
  }

  // ---- inbound ----------------------------------------------------------------------------

  /** @internal A data frame from the socket. */
  receive(data: Buffer, isBinary: boolean): void {
    if (this.state >= CLOSING) return;
    const now = this.host.now();
    this.lastSeen = now;
    if (!this.countTransmission(now)) return;
    if (this.busy) this.queueFrame(data, isBinary);
    else {
      this.handleFrame(data, isBinary);
      if (this.queue !== null) this.drain();
    }
  }

  /**
   * Frames wait while a callback is in flight. Past `maxBackpressure` queued bytes, the socket
   * stops being read, so TCP pushes back on the client: memory stays bounded and nothing the
   * client sent is dropped. Reading resumes once the queue is drained.
   */
  private queueFrame(data: Buffer, isBinary: boolean): void {
    this.enqueue(TASK_FRAME, data, isBinary);
    this.queuedBytes += data.length + QUEUED_FRAME_OVERHEAD;
    if (!this.readPaused && this.queuedBytes > this.host.options.maxBackpressure) {
      this.readPaused = true;
      this.ws.pause();
    }
  }

  /** @internal A ping: it keeps the connection alive and counts against the flood limit. */
  receivePing(): void {
    if (this.state >= CLOSING) return;
    const now = this.host.now();
    this.lastSeen = now;
    this.countTransmission(now);
  }

  /** @internal */
  receivePong(): void {
    this.lastSeen = this.host.now();
  }

  /** An in-app message for @OnInfo; false when the connection is closing. */
  info(info: unknown): boolean {
    if (this.state >= CLOSING) return false;
    if (this.busy) this.enqueue(TASK_INFO, info, undefined);
    else {
      this.handleInfo(info);
      if (this.queue !== null) this.drain();
    }
    return true;
  }

  /** The capacity-th frame within `duration` ms closes with 3001 and is not handled. */
  private countTransmission(now: number): boolean {
    const { capacity, duration } = this.host.options.transmissionLimit;
    if (this.window.admit(now, capacity, duration)) return true;
    this.closeFor('tooManyMessages');
    return false;
  }

  private handleFrame(data: Buffer, isBinary: boolean): void {
    const handler = this.handler;
    this.host.stats.framesIn++;
    let message: unknown = INVALID_MESSAGE;
    if ((handler.codec.frameType === 'binary') === isBinary) {
      try {
        message = handler.codec.decode(data);
      } catch (error) {
        this.fail(error, `${handler.codecName}.decode()`);
        return;
      }
    }
    if (message === INVALID_MESSAGE) return this.invalidFrame();
    if (handler.router !== null) {
      // A routed handler: a message no route takes is as invalid as an undecodable one.
      const route = handler.router.match(message);
      if (route === null) return this.invalidFrame();
      this.invoke(route.callback, message, route.label);
    } else if (handler.message !== null) {
      this.invoke(handler.message, message, handler.labels.message);
    }
  }

  private invalidFrame(): void {
    this.host.stats.invalidFrames++;
    if (this.host.options.invalidMessage === 'close') this.closeFor('invalidMessage');
  }

  private handleInfo(info: unknown): void {
    const handler = this.handler;
    if (handler.info !== null) this.invoke(handler.info, info, handler.labels.info);
    else this.debug('info dropped: the handler has no @OnInfo');
  }

  private invoke(callback: (value: unknown, session: Session) => unknown, value: unknown, label: string): void {
    let result: unknown;
    // Busy during the call too: an info the callback sends to this very connection (through
    // DeliveryService) is queued behind it instead of running re-entrantly inside it.
    this.busy = true;
    try {
      result = callback(value, this.session);
    } catch (error) {
      this.busy = false;
      this.callbackFailed(error, label);
      return;
    }
    // A returned Observable is sent value by value; the connection waits for its completion.
    if (isObservableLike(result)) result = this.sendEach(result, null);
    if (isPromiseLike(result)) {
      this.busyLabel = label;
      this.awaitCallback(result);
      return;
    }
    this.busy = false;
    if (result !== undefined) this.reply(result, label);
  }

  // Made on the first async callback and kept: connections whose callbacks are all synchronous
  // (most of them, and every idle one) carry no closures.
  private onSettled: ((value: unknown) => void) | null = null;
  private onRejected: ((error: unknown) => void) | null = null;

  private awaitCallback(result: PromiseLike<unknown>): void {
    result.then(
      (this.onSettled ??= (value) => this.settle(value)),
      (this.onRejected ??= (error) => {
        this.callbackFailed(error, this.busyLabel);
        this.settle(undefined);
      }),
    );
  }

  /** A callback finished: send its result, open the connection after @OnInit, drain the queue. */
  private settle(value: unknown): void {
    if (isObservableLike(value)) {
      this.awaitCallback(this.sendEach(value, null));
      return;
    }
    const label = this.busyLabel;
    const initialized = this.state === INITIALIZING;
    if (initialized) {
      this.state = OPEN;
      this.openedAt = this.host.now();
    }
    if (value !== undefined && this.state === OPEN) this.reply(value, label);
    if (initialized) this.flushPendingWrites();
    this.busy = false;
    this.drain();
  }

  private reply(value: unknown, label: string): void {
    try {
      this.send(value);
    } catch (error) {
      this.fail(error, label);
    }
  }

  private resumeReading(): void {
    this.readPaused = false;
    // The silence was ours: the client gets a fresh idle window.
    this.lastSeen = this.host.now();
    this.ws.resume();
  }

  private enqueue(kind: number, a: unknown, b: unknown): void {
    (this.queue ??= []).push(kind, a, b);
  }

  private drain(): void {
    const queue = this.queue;
    while (queue !== null && !this.busy && this.queueHead < queue.length) {
      if (this.state >= CLOSING) break;
      const head = this.queueHead;
      this.queueHead = head + 3;
      if (queue[head] === TASK_FRAME) {
        const data = queue[head + 1] as Buffer;
        this.queuedBytes -= data.length + QUEUED_FRAME_OVERHEAD;
        this.handleFrame(data, queue[head + 2] as boolean);
      } else {
        this.handleInfo(queue[head + 1]);
      }
    }
    if (queue !== null && (this.queueHead >= queue.length || this.state >= CLOSING)) {
      this.queue = null;
      this.queueHead = 0;
      this.queuedBytes = 0;
      if (this.readPaused) this.resumeReading();
    }
    if (!this.busy && this.terminatePending) this.terminate();
  }

  // ---- outbound ---------------------------------------------------------------------------

  /** Encodes with the handler's codec (a Frame as it is) and writes; false when not written. */
  send(message: unknown): boolean {
    if (this.state >= CLOSING) return false;
    let data: string | Uint8Array;
    let binary: boolean;
    if (message instanceof Frame) {
      data = message.data;
      binary = message.type === 'binary';
    } else if (message instanceof FrameList) {
      return this.sendList(message);
    } else {
      data = encodeWith(this.handler.codec, message);
      binary = this.handler.codec.frameType === 'binary';
    }
    if (!this.canWrite(typeof data === 'string' ? data.length : data.byteLength)) return false;
    this.ws.send(data, binary ? SEND_BINARY : SEND_TEXT);
    this.host.stats.framesOut++;
    return true;
  }

  /**
   * Sends each value of a returned Observable in order; resolves when it completes, or when the
   * connection closes (then it is unsubscribed: an endless stream must not hold the connection).
   */
  sendEach(observable: ObservableLike, map: ((value: unknown) => unknown) | null): Promise<undefined> {
    if (this.state >= CLOSING) return Promise.resolve(undefined);
    const reply = sendEach(observable, (message) => this.send(message), map);
    this.stream = reply;
    return reply.done.finally(() => {
      if (this.stream === reply) this.stream = null;
    });
  }

  private cancelStream(): void {
    const stream = this.stream;
    this.stream = null;
    stream?.cancel();
  }

  /** Each message of a `Frame.list()` in order, then its close if any; false if one was not written. */
  private sendList(list: FrameList): boolean {
    let written = true;
    for (const message of list.messages) written = this.send(message) && written;
    if (list.close !== null) this.close(list.close.code, list.close.reason);
    return written;
  }

  /** @internal A delivery from elsewhere, already encoded; held back until @OnInit is done. */
  deliver(frame: OutboundFrame): boolean {
    if (this.state === INITIALIZING) {
      (this.pendingWrites ??= []).push(frame);
      return true;
    }
    return this.writeFrame(frame);
  }

  private writeFrame(frame: OutboundFrame): boolean {
    if (this.state >= CLOSING || !this.canWrite(frame.byteLength)) return false;
    frame.writeTo(this.ws);
    this.host.stats.framesOut++;
    return true;
  }

  private flushPendingWrites(): void {
    const pending = this.pendingWrites;
    if (pending === null) return;
    this.pendingWrites = null;
    for (const frame of pending) this.writeFrame(frame);
  }

  /** Open, and not a slow consumer (SPEC 7.4). */
  private canWrite(bytes: number): boolean {
    const ws = this.ws;
    if (ws.readyState !== 1) return false;
    // A socket with nothing unsent is keeping up, even for a message larger than the limit.
    const buffered = ws.bufferedAmount;
    if (buffered === 0 || buffered + bytes <= this.host.options.maxBackpressure) return true;
    if (this.host.options.slowConsumer === 'close') {
      this.closeFor('slowConsumer');
    } else {
      this.host.stats.droppedMessages++;
    }
    return false;
  }

  // ---- channels and timers (SessionConnection) --------------------------------------------

  join(channel: string | number, meta: unknown): boolean {
    if (this.state >= CLOSING) return false;
    return this.host.registry.join(this, String(channel), meta);
  }

  leave(channel: string | number): boolean {
    return this.host.registry.leave(this, String(channel));
  }

  leaveAll(): number {
    return this.host.registry.leaveAll(this);
  }

  channels(): string[] {
    return this.host.registry.channelsOf(this);
  }

  schedule(ms: number, info: unknown): ScheduledInfo {
    if (this.state >= CLOSING) return NOTHING_SCHEDULED;
    const timers = (this.timers ??= new Set());
    const timer = setTimeout(() => {
      timers.delete(timer);
      this.info(info);
    }, ms);
    // A pending info must not keep a shutting-down process alive; terminate clears it anyway.
    timer.unref();
    timers.add(timer);
    return {
      cancel: () => {
        clearTimeout(timer);
        timers.delete(timer);
      },
    };
  }

  // ---- closing ----------------------------------------------------------------------------

  /** `session.close()` / `delivery.close()`. */
  close(code: number, reason: string): void {
    this.beginClose('stop', code, reason);
  }

  /** Closes with the documented code of a server-side reason (SPEC 8). */
  closeFor(reason: Exclude<keyof typeof CLOSE_FRAMES, 'error'>): void {
    const [code, text] = CLOSE_FRAMES[reason];
    this.beginClose(reason, code, text);
  }

  private beginClose(reason: TerminateReason, code: number, text: string): void {
    if (this.state >= CLOSING) return;
    this.state = CLOSING;
    this.closeReason = reason;
    this.pendingWrites = null;
    // The closing handshake needs the client's close frame to be read.
    if (this.readPaused) this.resumeReading();
    this.clearTimers();
    this.cancelStream();
    this.debug(`closing with ${code}`);
    this.ws.close(code, text);
  }

  /**
   * A message or info callback threw. A `WsException` (or a client-caused `HttpException`) is
   * answered with the error frame, as the enhancer wrapper answers it; anything else is a bug.
   */
  private callbackFailed(error: unknown, label: string): void {
    const frame = this.state === OPEN ? errorFrameOf(error) : null;
    if (frame === null) this.fail(error, label);
    else this.reply(frame, label);
  }

  /** A callback threw: log once with class and method, close this connection only, with 1011. */
  private fail(error: unknown, label: string): void {
    const cause = asError(error);
    this.host.logger.error(`${label} threw: ${cause.message} (${this.session})`, cause.stack);
    const [code, text] = CLOSE_FRAMES.error;
    this.beginClose({ kind: 'error', error: cause }, code, text);
  }

  /** @internal */
  socketErrored(error: Error): void {
    this.socketError ??= error;
    this.debug(`socket error: ${error.message}`);
  }

  /** @internal The socket is closed: terminate once the callback in flight (if any) is done. */
  socketClosed(code: number, reason: Buffer): void {
    if (this.state === CLOSED) return;
    const wasClosing = this.state === CLOSING;
    this.state = CLOSED;
    this.clearTimers();
    this.cancelStream();
    this.pendingWrites = null;
    if (!wasClosing || this.closeReason === null) {
      this.closeReason = this.socketError
        ? { kind: 'error', error: this.socketError }
        : code === 1006
          ? { kind: 'error', error: new ConnectionLostError() }
          : { kind: 'remote', code, reason: reason.toString() };
    }
    this.host.connectionClosed(this);
    if (this.busy) this.terminatePending = true;
    else this.terminate();
  }

  private terminate(): void {
    if (this.terminated) return;
    this.terminated = true;
    this.terminatePending = false;
    this.queue = null;
    const reason = this.closeReason ?? 'stop';
    this.host.stats.countTermination(terminateReasonName(reason));
    this.debug(`terminated: ${terminateReasonName(reason)}`);
    const callback = this.handler.terminate;
    if (callback !== null) {
      try {
        const result = callback(reason, this.session);
        if (isPromiseLike(result)) {
          this.host.trackTermination(
            Promise.resolve(result).catch((error: unknown) => this.logTerminateError(error)),
          );
        }
      } catch (error) {
        this.logTerminateError(error);
      }
    }
    // After the synchronous part of @OnTerminate, which may still read session.channels().
    this.host.registry.remove(this);
    this.host.connectionTerminated(this);
  }

  private logTerminateError(error: unknown): void {
    const cause = asError(error);
    this.host.logger.error(`${this.handler.labels.terminate} threw: ${cause.message} (${this.session})`, cause.stack);
  }

  private clearTimers(): void {
    if (this.timers === null) return;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers = null;
  }

  private debug(message: string): void {
    if (this.host.options.debug) this.host.logger.debug(`${this.session} ${message}`);
  }
}

function connectionOf(ws: unknown): Connection {
  return (ws as Record<symbol, Connection>)[kConnection];
}

// Shared listeners: `this` is the WebSocket, so no closure is created per connection.
function onSocketMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  connectionOf(this).receive(data, isBinary);
}
function onSocketPing(this: WebSocket): void {
  connectionOf(this).receivePing();
}
function onSocketPong(this: WebSocket): void {
  connectionOf(this).receivePong();
}
function onSocketError(this: WebSocket, error: Error): void {
  connectionOf(this).socketErrored(error);
}
function onSocketClose(this: WebSocket, code: number, reason: Buffer): void {
  connectionOf(this).socketClosed(code, reason);
}
