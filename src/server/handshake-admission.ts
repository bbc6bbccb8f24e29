/** Retry-After never asks a client to wait longer than this, in seconds. */
const MAX_RETRY_AFTER = 60;

/**
 * The `maxHandshakesPerSecond` check, before anything else runs for a handshake: admits that
 * many per one-second window. A refused client is told when to come back (`Retry-After`),
 * spread over the following seconds by its place in the queue, so that a storm of reconnects
 * (the clients of a worker that died) turns into a steady rate instead of a new storm each second.
 */
export class HandshakeAdmission {
  private windowStart = -Infinity;
  private admitted = 0;
  private refused = 0;

  constructor(private readonly perSecond: number) {}

  /** 0 when the handshake may proceed; else the seconds for `Retry-After`. */
  admit(nowMs: number): number {
    if (nowMs - this.windowStart >= 1000) {
      this.windowStart = nowMs;
      this.admitted = 0;
      this.refused = 0;
    }
    if (this.admitted < this.perSecond) {
      this.admitted++;
      return 0;
    }
    return Math.min(MAX_RETRY_AFTER, 1 + Math.floor(this.refused++ / this.perSecond));
  }
}
