/** How often a repeated cluster problem may be logged. */
export const LOG_INTERVAL_MS = 5000;

/**
 * Lets a repeated log line through at most once per LOG_INTERVAL_MS and counts the ones it held
 * back, so that a broker outage or a starved primary cannot flood the log.
 */
export class LogThrottle {
  private lastLoggedAt = -Infinity;
  private heldBack = 0;

  /**
   * Null when this occurrence must not be logged (it is counted); otherwise how many were held
   * back since the last line, which the caller reports with this one.
   */
  take(): number | null {
    const now = Date.now();
    if (now - this.lastLoggedAt < LOG_INTERVAL_MS) {
      this.heldBack++;
      return null;
    }
    const heldBack = this.heldBack;
    this.lastLoggedAt = now;
    this.heldBack = 0;
    return heldBack;
  }
}
