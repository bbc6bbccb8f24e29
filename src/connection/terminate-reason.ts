import { HandlerTimeoutError } from '../errors/handler-timeout.error.js';

/**
 * Why a connection ended, as `@OnTerminate` receives it.
 *
 * | reason | when |
 * |---|---|
 * | `{ kind: 'remote', code, reason }` | the client closed (code 1005 when it sent none) |
 * | `{ kind: 'error', error }` | the TCP connection dropped, a protocol error, or a handler threw |
 * | `{ kind: 'error', error: HandlerTimeoutError }` | a callback was still pending `handlerTimeout` ms after the socket closed (or at the end of `shutdownTimeout`); `error.closeReason` is the reason it would have had |
 * | `'stop'` | `session.close()` or `delivery.close()` |
 * | `'shutdown'` | the application is shutting down |
 * | `'invalidMessage'` | an undecodable frame with `invalidMessage: 'close'` |
 * | `'tooManyMessages'` | the transmission limit was reached |
 * | `'overAge'` | `maxConnectionAge` elapsed |
 * | `'idleTimeout'` | nothing received for `idleTimeout` |
 * | `'slowConsumer'` | unsent bytes exceeded `maxBackpressure` |
 * @publicApi
 */
export type TerminateReason =
  | { readonly kind: 'remote'; readonly code: number; readonly reason: string }
  | { readonly kind: 'error'; readonly error: Error }
  | 'stop'
  | 'shutdown'
  | 'invalidMessage'
  | 'tooManyMessages'
  | 'overAge'
  | 'idleTimeout'
  | 'slowConsumer';

/** The name a reason is counted and logged under. */
export function terminateReasonName(reason: TerminateReason): string {
  if (typeof reason === 'string') return reason;
  // Told apart from other errors: a hung callback is the application's to fix.
  return reason.kind === 'error' && reason.error instanceof HandlerTimeoutError ? 'handlerTimeout' : reason.kind;
}
