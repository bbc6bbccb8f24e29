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
  if (!isApplicationCloseCode(code)) {
    throw new RangeError(`Close code must be 1000 or 3000-4999, got ${code}`);
  }
  if (typeof reason !== 'string') throw new RangeError(`Close reason must be a string, got ${typeof reason}`);
  if (Buffer.byteLength(reason) > MAX_CLOSE_REASON_BYTES) {
    throw new RangeError(`Close reason must fit in 123 bytes, got ${Buffer.byteLength(reason)}`);
  }
}

/** The longest close reason a close frame carries (RFC 6455 5.5: 125 bytes of payload, 2 for the code). */
export const MAX_CLOSE_REASON_BYTES = 123;

export function isApplicationCloseCode(code: number): boolean {
  return Number.isInteger(code) && (code === 1000 || (code >= 3000 && code <= 4999));
}

/** The longest prefix of `text` that fits `limit` bytes of UTF-8, cut on a character boundary. */
export function truncateUtf8(text: string, limit: number): string {
  if (text.length * 3 <= limit || Buffer.byteLength(text) <= limit) return text;
  const bytes = Buffer.from(text).subarray(0, limit + 1);
  // Back up to the first byte of the character that straddles the limit (continuations are 10xxxxxx).
  let end = limit;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.toString('utf8', 0, end);
}

/**
 * A close that came from elsewhere (another node, an external publisher) made safe to send:
 * an invalid code becomes 1000, an over-long reason is cut. `problem` says what was wrong.
 */
export function safeRemoteClose(code: number, reason: string): { code: number; reason: string; problem: string | null } {
  const validCode = isApplicationCloseCode(code);
  const safeReason = truncateUtf8(reason, MAX_CLOSE_REASON_BYTES);
  if (validCode && safeReason === reason) return { code, reason, problem: null };
  const problems: string[] = [];
  if (!validCode) problems.push(`code ${code} is not 1000 or 3000-4999 (closing with 1000)`);
  if (safeReason !== reason) problems.push(`its reason is ${Buffer.byteLength(reason)} bytes (cut to ${MAX_CLOSE_REASON_BYTES})`);
  return { code: validCode ? code : 1000, reason: safeReason, problem: problems.join(' and ') };
}
