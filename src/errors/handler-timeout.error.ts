import type { TerminateReason } from '../connection/terminate-reason.js';
import { RiversideError } from './riverside.error.js';

/**
 * The error of the terminate reason `{ kind: 'error', error }` when a callback was still pending
 * `handlerTimeout` ms after its connection's socket closed (or at the end of `shutdownTimeout`
 * during shutdown). The connection was released without waiting for it, and whatever it
 * returns or throws later is discarded.
 * @publicApi
 */
export class HandlerTimeoutError extends RiversideError {
  constructor(
    /** The callback that did not settle, e.g. `'ChatHandler.onMessage()'`. */
    readonly callback: string,
    /** How long it was waited for after the socket closed, in ms. */
    readonly timeout: number,
    /** Why the connection was closing: the reason @OnTerminate would have had. */
    readonly closeReason: TerminateReason,
  ) {
    super(
      'RIVERSIDE_ERR_HANDLER_TIMEOUT',
      `${callback} had not settled ${timeout} ms after its connection closed; the session was released without it. ` +
        'Bound the work it awaits (a timeout on the database call), or raise the handlerTimeout option.',
    );
  }
}
