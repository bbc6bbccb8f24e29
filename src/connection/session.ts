import type { PeerAddress } from '../auth/auth-request.js';
import type { ObservableLike } from '../handler/observable-reply.js';
import { assertApplicationCloseCode } from './close-codes.js';
import { MAX_TIMER_DELAY_MS } from './scheduled-infos.js';

/** What a Session needs from the connection behind it. */
export interface SessionConnection {
  readonly isOpen: boolean;
  send(message: unknown): boolean;
  close(code: number, reason: string): void;
  join(channel: string | number, meta: unknown): boolean;
  leave(channel: string | number): boolean;
  leaveAll(): number;
  channels(): string[];
  schedule(ms: number, info: unknown): ScheduledInfo;
  /** Sends each value of an Observable in order; resolves on completion or when the connection closes. */
  sendEach(observable: ObservableLike, map: ((value: unknown) => unknown) | null): Promise<undefined>;
}

const kConnection = Symbol('riverside.session_connection');

/**
 * Sessions keep their connection time in ms since this moment, not since 1970: V8 keeps a
 * number that small (under 2^31, some 24 days) in the field itself, where a full epoch time
 * takes a 16-byte heap number per session.
 */
const CONNECTED_AT_BASE = Date.now();

/** @internal The connection behind a session, for DeliveryService. */
export function connectionOf(session: Session): SessionConnection {
  return (session as unknown as Record<symbol, SessionConnection>)[kConnection];
}

/**
 * A pending `session.sendAfter()`; `cancel()` stops it (it is also cleared at terminate).
 * @publicApi
 */
export interface ScheduledInfo {
  cancel(): void;
}

/**
 * One WebSocket connection of an authenticated user, handed to every handler callback.
 * @publicApi
 */
export class Session<S = unknown> {
  /** Handler-owned state, initialised from the `state` of the auth result. */
  state: S;

  private readonly [kConnection]: SessionConnection;

  /** @internal Sessions are created by the server for each accepted connection. */
  constructor(
    connection: SessionConnection,
    /** The user this connection belongs to (always a string: a numeric id becomes its decimal form). */
    readonly userId: string,
    /** This connection's session id (from the auth result, or a random 40-hex id). */
    readonly id: string,
    readonly peer: PeerAddress,
    /** The subprotocol selected in the handshake, or null. */
    readonly subprotocol: string | null,
    state: S,
    /** When the WebSocket was accepted, in ms since the epoch: a Date is made only when read. */
    connectedAtMs: number,
  ) {
    this[kConnection] = connection;
    this.state = state;
    this.connectedAtOffset = connectedAtMs - CONNECTED_AT_BASE;
  }

  private readonly connectedAtOffset: number;

  private connectedAtDate: Date | null = null;

  /** When the WebSocket was accepted. */
  get connectedAt(): Date {
    return (this.connectedAtDate ??= new Date(CONNECTED_AT_BASE + this.connectedAtOffset));
  }

  private get connection(): SessionConnection {
    return this[kConnection];
  }

  /** Whether messages can still be written to this connection. */
  get isOpen(): boolean {
    return this.connection.isOpen;
  }

  /**
   * Encodes a message with the handler's codec and writes it to this connection (a `Frame`
   * is written as it is). Returns false when nothing was written (closed or slow consumer).
   * Throws an `EncodeError` when the codec cannot encode the value.
   */
  send(message: unknown): boolean {
    return this.connection.send(message);
  }

  /**
   * Closes this connection; `@OnTerminate` gets 'stop'. Codes: 1000 or 3000-4999; the reason at
   * most 123 UTF-8 bytes. Anything else throws a RangeError, and the connection stays as it was.
   */
  close(code = 1000, reason = ''): void {
    assertApplicationCloseCode(code, reason);
    this.connection.close(code, reason);
  }

  /**
   * Joins a channel (idempotent: joining again only replaces `meta`). Returns true when this
   * call added the membership. Throws a `RiversideError`, changing nothing, when the channel id
   * is over `maxIdLength` UTF-8 bytes (`RIVERSIDE_ERR_ID_TOO_LONG`) or the session is already in
   * `maxChannelsPerSession` channels (`RIVERSIDE_ERR_TOO_MANY_CHANNELS`).
   */
  join(channel: string | number, meta?: unknown): boolean {
    return this.connection.join(channel, meta);
  }

  /** Leaves one channel, or every channel when none is named. Returns how many were left. */
  leave(channel?: string | number): number {
    return channel === undefined ? this.connection.leaveAll() : Number(this.connection.leave(channel));
  }

  /** The channels this session is in. */
  channels(): string[] {
    return this.connection.channels();
  }

  /**
   * After `ms`, `info` reaches this handler's `@OnInfo` (in order with frames). Throws a
   * RangeError for a delay below 0 or over 2147483647 ms (about 24.8 days, what a timer holds).
   */
  sendAfter(ms: number, info: unknown): ScheduledInfo {
    if (!Number.isFinite(ms) || ms < 0 || ms > MAX_TIMER_DELAY_MS) {
      throw new RangeError(`sendAfter takes a delay in ms from 0 to ${MAX_TIMER_DELAY_MS}, got ${ms}`);
    }
    return this.connection.schedule(ms, info);
  }

  /** 'Session:<userId>:<first 6 characters of the id>', for logs. */
  toString(): string {
    return `Session:${this.userId}:${this.id.slice(0, 6)}`;
  }
}
