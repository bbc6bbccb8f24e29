/**
 * Close codes the server sends, with the reason text that goes with each.
 * @publicApi
 */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  INTERNAL_ERROR: 1011,
  INVALID_MESSAGE: 3000,
  TOO_MANY_MESSAGES: 3001,
  OVER_AGE: 3002,
  IDLE_TIMEOUT: 3003,
  SLOW_CONSUMER: 3004,
});

/** Close frames sent by the server for each server-side reason. */
export const CLOSE_FRAMES = Object.freeze({
  shutdown: [CloseCode.GOING_AWAY, 'server shutting down'],
  error: [CloseCode.INTERNAL_ERROR, 'internal error'],
  invalidMessage: [CloseCode.INVALID_MESSAGE, 'invalid message'],
  tooManyMessages: [CloseCode.TOO_MANY_MESSAGES, 'too many messages'],
  overAge: [CloseCode.OVER_AGE, 'over age'],
  idleTimeout: [CloseCode.IDLE_TIMEOUT, 'idle timeout'],
  slowConsumer: [CloseCode.SLOW_CONSUMER, 'slow consumer'],
} as const);

/** Codes an application may close with: 1000, or the private range 3000-4999 (RFC 6455 7.4.2). */
export function assertApplicationCloseCode(code: number, reason: string): void {
  if (!Number.isInteger(code) || (code !== 1000 && (code < 3000 || code > 4999))) {
    throw new RangeError(`Close code must be 1000 or 3000-4999, got ${code}`);
  }
  if (Buffer.byteLength(reason) > 123) {
    throw new RangeError(`Close reason must fit in 123 bytes, got ${Buffer.byteLength(reason)}`);
  }
}
