import type { WebSocket } from 'ws';
import { INVALID_MESSAGE } from '../codec/codec.interface.js';
import { FrameList } from '../codec/frame.js';
import type { OutboundFrame } from '../delivery/outbound-frame.js';
import type { HandlerDefinition } from '../handler/handler-definition.js';
import { errorFrameOf } from '../handler/error-frame.js';
import { isObservableLike, type ObservableLike, type ObservableReply, sendEach } from '../handler/observable-reply.js';
import { assertJoinable } from './channel-limits.js';
import type { ConnectionHost, ConnectionIdentity } from './connection-host.js';
import { CLOSING, ConnectionLifecycle, INITIALIZING, OPEN } from './connection-lifecycle.js';
import { InboundQueue, TASK_FRAME } from './inbound-queue.js';
import { OutboundWriter } from './outbound-writer.js';
import { isPromiseLike } from './promise-like.js';
import { ScheduledInfos } from './scheduled-infos.js';
import { listenTo } from './socket-listeners.js';
import { type ScheduledInfo, Session, type SessionConnection } from './session.js';
import { admitTransmission, type TransmissionWindow } from './transmission-window.js';

export { type ConnectionHost, type ConnectionIdentity, ConnectionLostError } from './connection-host.js';

const NOTHING_SCHEDULED: ScheduledInfo = Object.freeze({ cancel() {} });

/**
 * One accepted WebSocket and its handler: the frame path (limit -> decode -> call -> encode),
 * the callbacks' results (awaited, replied, streamed) and what the session asks of it (send,
 * join, schedule). How it ends (states, exactly-once termination, handlerTimeout) is its base,
 * ConnectionLifecycle; what waits while a callback is in flight is the InboundQueue's; what is
 * written, the OutboundWriter's.
 *
 * Ordering: while a callback's Promise is pending (@OnInit included), later frames and infos
 * wait in the queue, and deliveries from elsewhere wait until @OnInit is done. Per frame,
 * nothing is allocated beyond what the codec and the handler allocate.
 */
export class Connection extends ConnectionLifecycle implements SessionConnection, TransmissionWindow {
  readonly session: Session;
  /** Channels this connection is in; owned by the SessionRegistry. */
  joined: Set<string> | null = null;
  /** Last inbound activity (frame, ping or pong), for the idle sweep. */
  lastSeen: number;
  /** When @OnInit finished, for the max-age sweep; 0 while initializing. */
  openedAt = 0;

  private queue: InboundQueue | null = null;
  /** Made by the first write: a connection nothing is written to carries none. */
  private outbound: OutboundWriter | null = null;
  /** @internal The flood limit's window (transmission-window.ts), inlined. */
  windowStart: number;
  /** @internal */
  windowCount = 0;
  private scheduled: ScheduledInfos | null = null;
  /** A returned Observable being sent; unsubscribed when the connection closes. */
  private stream: ObservableReply | null = null;

  constructor(ws: WebSocket, handler: HandlerDefinition, host: ConnectionHost, identity: ConnectionIdentity) {
    super(ws, handler, host);
    const now = host.now();
    this.lastSeen = now;
    this.windowStart = now;
    this.session = new Session(
      this,
      identity.userId,
      identity.sessionId,
      identity.peer,
      identity.subprotocol,
      identity.state,
      Date.now(),
    );
    listenTo(ws, this);
  }

  /** The writer, made on first use. */
  private writer(): OutboundWriter {
    return (this.outbound ??= new OutboundWriter(this.ws, this.host.options, this.host.stats, this));
  }

  /** Runs @OnInit; frames that arrive meanwhile wait in order. */
  start(): void {
    // In a cluster, start waits for the broker: the connection may have been released meanwhile.
    if (this.terminated) return;
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
      if (this.queue !== null && !this.queue.isEmpty) this.drain();
    }
  }

  /**
   * Frames wait while a callback is in flight. Past `maxBackpressure` queued bytes or
   * `maxQueuedMessages` tasks, the socket stops being read, so TCP pushes back on the client:
   * memory stays bounded and nothing the client sent is dropped. Reading resumes once the
   * queue is drained.
   */
  private queueFrame(data: Buffer, isBinary: boolean): void {
    const queue = (this.queue ??= new InboundQueue());
    queue.pushFrame(data, isBinary);
    const { maxBackpressure, maxQueuedMessages } = this.host.options;
    if (!this.readPaused && (queue.bytes > maxBackpressure || queue.length >= maxQueuedMessages)) {
      this.readPaused = true;
      this.ws.pause();
    }
  }

  /** @internal A ping: it keeps the connection alive and counts against the flood limit. */
  receivePing(): void {
    // ws has just written the pong.
    this.outbound?.wsWrote();
    if (this.state >= CLOSING) return;
    const now = this.host.now();
    this.lastSeen = now;
    this.countTransmission(now);
  }

  /** @internal */
  receivePong(): void {
    this.lastSeen = this.host.now();
  }

  /**
   * An in-app message for @OnInfo; false when the connection is closing, or when it is busy
   * with `maxQueuedMessages` tasks waiting (the slow-consumer policy then applies).
   */
  info(info: unknown): boolean {
    if (this.state >= CLOSING) return false;
    if (this.busy) {
      const queue = (this.queue ??= new InboundQueue());
      const held = this.outbound === null ? 0 : this.outbound.heldCount;
      if (queue.length + held >= this.host.options.maxQueuedMessages) {
        this.writer().refuse();
        return false;
      }
      queue.pushInfo(info);
    } else {
      this.handleInfo(info);
      if (this.queue !== null && !this.queue.isEmpty) this.drain();
    }
    return true;
  }

  /** The capacity-th frame within `duration` ms closes with 3001 and is not handled. */
  private countTransmission(now: number): boolean {
    const { capacity, duration } = this.host.options.transmissionLimit;
    if (admitTransmission(this, now, capacity, duration)) return true;
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
        // A callback given up on (handlerTimeout) has no say any more.
        if (this.terminated) return;
        this.callbackFailed(error, this.busyLabel);
        this.settle(undefined);
      }),
    );
  }

  /** A callback finished: send its result, open the connection after @OnInit, drain the queue. */
  private settle(value: unknown): void {
    // The late result of a callback given up on (handlerTimeout) is discarded.
    if (this.terminated) return;
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
    if (initialized && this.outbound !== null && !this.outbound.holding) this.outbound.flushHeld();
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

  /** Handles what waits, in order, until a callback goes async or the connection closes. */
  private drain(): void {
    const queue = this.queue;
    if (queue !== null) {
      while (!this.busy && !queue.isEmpty && this.state < CLOSING) {
        if (queue.peekKind() === TASK_FRAME) {
          const isBinary = queue.peekBinary();
          this.handleFrame(queue.takeFrame(), isBinary);
        } else {
          this.handleInfo(queue.take());
        }
      }
      if (queue.isEmpty && this.readPaused && this.state < CLOSING) this.resumeReading();
    }
    this.terminateIfPending();
  }

  // ---- outbound ---------------------------------------------------------------------------

  /** Encodes with the handler's codec (a Frame as it is) and writes; false when not written. */
  send(message: unknown): boolean {
    if (this.state >= CLOSING) return false;
    if (message instanceof FrameList) return this.sendList(message);
    return this.writer().send(message, this.handler.codec);
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

  /**
   * @internal A delivery from elsewhere, already encoded; held back until @OnInit is done and
   * while a join waits for its subscription.
   */
  deliver(frame: OutboundFrame): boolean {
    if (this.state === INITIALIZING || (this.outbound !== null && this.outbound.holding)) {
      return this.writer().hold(frame, this.queue === null ? 0 : this.queue.length);
    }
    if (this.state >= CLOSING) return false;
    return this.writer().write(frame);
  }

  // ---- channels and timers (SessionConnection) --------------------------------------------

  /**
   * Joins a channel. Throws a RiversideError (`RIVERSIDE_ERR_ID_TOO_LONG`,
   * `RIVERSIDE_ERR_TOO_MANY_CHANNELS`) past `maxIdLength` / `maxChannelsPerSession`.
   *
   * In a cluster, every frame written to this connection after the join waits until the broker
   * has confirmed the channel's subscription (bounded by the relay), so that a client that heard
   * anything after its join also hears every later broadcast from other nodes.
   */
  join(channel: string | number, meta: unknown): boolean {
    if (this.state >= CLOSING) return false;
    const id = String(channel);
    assertJoinable(this.joined, id, this.host.options, this.host.stats);
    const registry = this.host.registry;
    const joined = registry.join(this, id, meta);
    const subscribed = registry.channelSubscription(id);
    if (subscribed !== null) {
      this.writer().waitForSubscription(subscribed, () => {
        if (this.state === OPEN) this.outbound?.flushHeld();
      });
    }
    return joined;
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
    return (this.scheduled ??= new ScheduledInfos(this)).schedule(ms, info);
  }

  // ---- closing (ConnectionLifecycle) ----------------------------------------------------

  /**
   * A message or info callback threw. A `WsException` (or a client-caused `HttpException`) is
   * answered with the error frame, as the enhancer wrapper answers it; anything else is a bug.
   */
  private callbackFailed(error: unknown, label: string): void {
    const frame = this.state === OPEN ? errorFrameOf(error) : null;
    if (frame === null) this.fail(error, label);
    else this.reply(frame, label);
  }

  protected dropPending(): void {
    this.queue?.clear();
    this.outbound?.dropHeld();
    this.scheduled?.clear();
    this.scheduled = null;
    this.cancelStream();
  }

  protected beforeCloseFrame(): void {
    this.outbound?.release();
    if (this.readPaused) this.resumeReading();
  }

  protected released(): void {
    this.queue = null;
    this.host.registry.remove(this);
  }
}
