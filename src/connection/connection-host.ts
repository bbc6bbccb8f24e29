import type { Logger } from '@nestjs/common';
import type { PeerAddress } from '../auth/auth-request.js';
import type { SessionRegistry } from '../delivery/session-registry.js';
import type { ResolvedRiversideOptions } from '../module/riverside-options.resolver.js';
import type { RiversideStats } from '../stats/riverside-stats.js';

/** What a connection needs from the server that accepted it. */
export interface ConnectionHost {
  readonly options: ResolvedRiversideOptions;
  readonly stats: RiversideStats;
  readonly registry: SessionRegistry;
  readonly logger: Logger;
  /** Monotonic milliseconds. */
  now(): number;
  /** A connection's socket is gone: release its slot. */
  connectionClosed(): void;
  /** A connection's @OnTerminate has been called (its Promise, if any, is tracked): shutdown may go on. */
  connectionTerminated(): void;
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

/**
 * The TCP connection ended without a close frame. It carries no stack trace: it is made by the
 * server for every dropped connection, where a trace would only say "socket closed".
 */
export class ConnectionLostError extends Error {
  constructor() {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super('connection lost without a close frame');
    Error.stackTraceLimit = limit;
    this.name = 'ConnectionLostError';
  }
}
