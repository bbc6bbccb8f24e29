import type { WebSocket } from 'ws';
import { HandlerTimeoutError } from '../errors/handler-timeout.error.js';
import type { HandlerDefinition } from '../handler/handler-definition.js';
import { CLOSE_FRAMES } from './close-codes.js';
import { type ConnectionHost, ConnectionLostError } from './connection-host.js';
import { isPromiseLike } from './promise-like.js';
import type { Session } from './session.js';
import { type TerminateReason, terminateReasonName } from './terminate-reason.js';

// Lifecycle states, in order: a connection only moves forward.
export const INITIALIZING = 0;
export const OPEN = 1;
export const CLOSING = 2;
export const CLOSED = 3;

/**
 * The close reason of a connection lost without a close frame, until something reads it: its
 * ConnectionLostError is made only for @OnTerminate or a HandlerTimeoutError, not for every
 * dropped connection.
 */
const CONNECTION_LOST = Symbol('riverside.connection_lost');

// Flags of a connection, packed into one field (each field costs every connection 8 bytes).
/** A callback is in flight (@OnInit included): frames and infos wait in the queue. */
const BUSY = 1;
/** The socket is not read while too much waits in the queue. */
const READ_PAUSED = 2;
/** The socket closed while a callback was in flight: terminate once it settles. */
const TERMINATE_PENDING = 4;
/** @OnTerminate has run (or is running). */
const TERMINATED = 8;

/**
 * A slow consumer's close frame waits behind its unsent bytes: past this, its TCP connection
 * is dropped instead of waiting for ws's 30 s close timeout.
 */
export const SLOW_CONSUMER_CLOSE_MS = 1000;

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * How a connection ends: its states (INITIALIZING -> OPEN -> CLOSING -> CLOSED), the close it
 * starts, the socket's close, and exactly one @OnTerminate, with its reason, once no callback is
 * in flight any more (or handlerTimeout ms after the socket closed, whichever comes first).
 *
 * The base of Connection rather than an object of its own: the hottest class of the library
 * keeps one object and one field per state, and its frame path reads `state` and the flags
 * directly. What Connection holds (its queue, writer, timers, stream) it releases through the
 * three hooks at the end.
 */
export abstract class ConnectionLifecycle {
  /**
   * When the callback in flight is given up on (monotonic ms): set once the socket has closed
   * while a callback is pending; 0 otherwise. The sweep calls abandonCallback() past it.
   */
  abandonAt = 0;

  protected state = INITIALIZING;
  /** BUSY, READ_PAUSED, TERMINATE_PENDING, TERMINATED. */
  private flags = BUSY;
  /** The callback in flight (or the last one), for logs and HandlerTimeoutError. */
  protected busyLabel: string;
  private closeReason: TerminateReason | typeof CONNECTION_LOST | null = null;
  private socketError: Error | null = null;
  private closeDeadline: NodeJS.Timeout | null = null;

  abstract readonly session: Session;

  protected constructor(
    readonly ws: WebSocket,
    readonly handler: HandlerDefinition,
    protected readonly host: ConnectionHost,
  ) {
    this.busyLabel = handler.labels.init;
  }

  /** The socket is not read while too much waits in the queue (see Connection.queueFrame). */
  get readPaused(): boolean {
    return (this.flags & READ_PAUSED) !== 0;
  }

  protected set readPaused(value: boolean) {
    this.setFlag(READ_PAUSED, value);
  }

  protected get busy(): boolean {
    return (this.flags & BUSY) !== 0;
  }

  protected set busy(value: boolean) {
    this.setFlag(BUSY, value);
  }

  private get terminatePending(): boolean {
    return (this.flags & TERMINATE_PENDING) !== 0;
  }

  private set terminatePending(value: boolean) {
    this.setFlag(TERMINATE_PENDING, value);
  }

  protected get terminated(): boolean {
    return (this.flags & TERMINATED) !== 0;
  }

  private set terminated(value: boolean) {
    this.setFlag(TERMINATED, value);
  }

  private setFlag(flag: number, on: boolean): void {
    this.flags = on ? this.flags | flag : this.flags & ~flag;
  }

  get isOpen(): boolean {
    return this.state <= OPEN && this.ws.readyState === 1;
  }

  /** Whether @OnTerminate has run (or is running). */
  get isTerminated(): boolean {
    return this.terminated;
  }

  /** `session.close()` / `delivery.close()`: the code and reason were validated by the caller. */
  close(code: number, reason: string): void {
    this.beginClose('stop', code, reason);
  }

  /** Closes with the documented code of a server-side reason (SPEC 8). */
  closeFor(reason: Exclude<keyof typeof CLOSE_FRAMES, 'error'>): void {
    const [code, text] = CLOSE_FRAMES[reason];
    this.beginClose(reason, code, text);
  }

  /** A callback threw: log once with class and method, close this connection only, with 1011. */
  protected fail(error: unknown, label: string): void {
    const cause = asError(error);
    this.host.logger.error(`${label} threw: ${cause.message} (${this.session})`, cause.stack);
    const [code, text] = CLOSE_FRAMES.error;
    this.beginClose({ kind: 'error', error: cause }, code, text);
  }

  private beginClose(reason: TerminateReason, code: number, text: string): void {
    if (this.state >= CLOSING) return;
    this.state = CLOSING;
    this.closeReason = reason;
    this.dropPending();
    this.beforeCloseFrame();
    this.debug(`closing with ${code}`);
    try {
      this.ws.close(code, text);
    } catch (error) {
      // Every entry validates codes and reasons; should one slip through, ws's refusal must
      // not leave a connection that is CLOSING forever.
      this.host.logger.error(`Closing ${this.session} with ${code} failed: ${asError(error).message}; dropping it`);
      this.ws.terminate();
      return;
    }
    if (reason === 'slowConsumer') {
      // Its close frame waits behind the bytes it does not read.
      const ws = this.ws;
      this.closeDeadline = setTimeout(() => ws.terminate(), SLOW_CONSUMER_CLOSE_MS);
      this.closeDeadline.unref();
    }
  }

  /** @internal */
  socketErrored(error: Error): void {
    this.socketError ??= error;
    this.debug(`socket error: ${error.message}`);
  }

  /**
   * @internal The socket is closed: terminate once the callback in flight (if any) is done,
   * or `handlerTimeout` ms from now, whichever comes first.
   */
  socketClosed(code: number, reason: Buffer): void {
    if (this.state === CLOSED) return;
    const wasClosing = this.state === CLOSING;
    this.state = CLOSED;
    this.dropPending();
    if (this.closeDeadline !== null) clearTimeout(this.closeDeadline);
    if (!wasClosing || this.closeReason === null) {
      this.closeReason = this.socketError
        ? { kind: 'error', error: this.socketError }
        : code === 1006
          ? CONNECTION_LOST
          : { kind: 'remote', code, reason: reason.toString() };
    }
    this.host.connectionClosed();
    if (this.terminated) return;
    if (this.busy) {
      this.terminatePending = true;
      this.abandonAt = this.host.now() + this.host.options.handlerTimeout;
    } else {
      this.terminate();
    }
  }

  /**
   * @internal The callback in flight is given up on (handlerTimeout, or the end of
   * shutdownTimeout): @OnTerminate runs now, with a HandlerTimeoutError, and the session is
   * released; whatever the callback does later is discarded.
   */
  abandonCallback(warn = true): void {
    if (this.terminated) return;
    const closeReason = this.terminateReason('shutdown');
    this.closeReason = {
      kind: 'error',
      error: new HandlerTimeoutError(this.busyLabel, this.host.options.handlerTimeout, closeReason),
    };
    if (warn) {
      this.host.logger.warn(
        `${this.busyLabel} had not settled ${this.host.options.handlerTimeout} ms after ${this.session} closed; released without it`,
      );
    }
    this.busy = false;
    this.terminate();
  }

  /** The callback in flight has settled: terminate now if the socket closed meanwhile. */
  protected terminateIfPending(): void {
    if (!this.busy && this.terminatePending) this.terminate();
  }

  private terminate(): void {
    if (this.terminated) return;
    this.terminated = true;
    this.terminatePending = false;
    this.abandonAt = 0;
    const name = this.closeReason === CONNECTION_LOST ? 'error' : terminateReasonName(this.closeReason ?? 'stop');
    this.host.stats.countTermination(name);
    this.debug(`terminated: ${name}`);
    const callback = this.handler.terminate;
    if (callback !== null) {
      try {
        const result = callback(this.terminateReason('stop'), this.session);
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
    this.released();
    this.host.connectionTerminated();
  }

  /** Why the connection ended, as @OnTerminate gets it; `fallback` when nothing closed it yet. */
  private terminateReason(fallback: TerminateReason): TerminateReason {
    const reason = this.closeReason;
    if (reason === CONNECTION_LOST) return (this.closeReason = { kind: 'error', error: new ConnectionLostError() });
    return reason ?? fallback;
  }

  private logTerminateError(error: unknown): void {
    const cause = asError(error);
    this.host.logger.error(`${this.handler.labels.terminate} threw: ${cause.message} (${this.session})`, cause.stack);
  }

  protected debug(message: string): void {
    if (this.host.options.debug) this.host.logger.debug(`${this.session} ${message}`);
  }

  /**
   * Closing or closed: nothing that waits (frames, infos, held deliveries, scheduled infos, a
   * returned Observable) is handled or sent any more. Released now, not at terminate.
   */
  protected abstract dropPending(): void;

  /**
   * Just before the close frame: what this turn wrote goes ahead of it, and a paused socket is
   * read again, since the closing handshake needs the client's close frame.
   */
  protected abstract beforeCloseFrame(): void;

  /** @OnTerminate has run (its synchronous part): leave the registry. */
  protected abstract released(): void;
}
