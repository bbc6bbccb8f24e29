import type { Logger } from '@nestjs/common';
import type { PeerAddress } from '../auth/auth-request.js';
import type { SessionRegistry } from '../delivery/session-registry.js';
import type { ResolvedRiversideOptions } from '../module/riverside-options.resolver.js';
import type { RiversideStats } from '../stats/riverside-stats.js';
import type { Connection } from './connection.js';

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

/** The TCP connection ended without a close frame. */
export class ConnectionLostError extends Error {
  constructor() {
    super('connection lost without a close frame');
    this.name = 'ConnectionLostError';
  }
}
