import type { AuthRequest } from '../auth/auth-request.js';
import type { AuthResult } from '../auth/auth-result.interface.js';
import type { Codec } from '../codec/codec.interface.js';
import type { Session } from '../connection/session.js';
import type { TerminateReason } from '../connection/terminate-reason.js';

import type { MessageRouter } from './message-router.js';

type Callback<A extends unknown[]> = ((...args: A) => unknown) | null;

/**
 * A handler's methods bound once at bootstrap: per frame, a lookup and a direct call (or the
 * Nest enhancer wrapper built at boot for a method that has enhancers).
 */
export interface HandlerDefinition {
  readonly className: string;
  readonly path: string;
  readonly codec: Codec;
  readonly codecName: string;
  readonly subprotocols: readonly string[];
  readonly authenticate: ((req: AuthRequest) => AuthResult | Promise<AuthResult>) | null;
  readonly init: Callback<[Session]>;
  /** The one unrouted `@OnMessage`; null when there is none or when `router` is set. */
  readonly message: Callback<[unknown, Session]>;
  /** Set when the class has routed `@OnMessage` methods; a frame no route takes is invalid. */
  readonly router: MessageRouter | null;
  /** The guards of `@OnAuthenticate`, run on the upgrade request ('http' context) before it. */
  readonly handshakeGuards: ((request: unknown, response: unknown) => Promise<void>) | null;
  readonly info: Callback<[unknown, Session]>;
  readonly terminate: Callback<[TerminateReason, Session]>;
  /** 'ChatHandler.onMessage()' and friends, for logs. */
  readonly labels: Readonly<Record<'authenticate' | 'init' | 'message' | 'info' | 'terminate', string>>;
}
