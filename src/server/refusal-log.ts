import type { Logger } from '@nestjs/common';

/** One warning line per kind and interval, however many events an attacker triggers. */
export const REFUSAL_LOG_INTERVAL = 10_000;

interface Pending {
  message: string;
  suppressed: number;
}

/**
 * Rate-limited warnings for what clients can trigger at will (refused handshakes, sheds, timeouts):
 * the first event of a kind is logged at once; later ones within `interval` ms are only counted,
 * and logged as one line with their count when the interval ends. Counting in stats is the
 * caller's job and happens for every event.
 */
export class RefusalLog {
  private readonly quiet = new Map<string, Pending>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly logger: Logger,
    private readonly interval = REFUSAL_LOG_INTERVAL,
  ) {}

  /** Logs `message` now, or counts it if a `kind` warning was logged less than `interval` ago. */
  warn(kind: string, message: string): void {
    const pending = this.quiet.get(kind);
    if (pending !== undefined) {
      pending.suppressed++;
      pending.message = message;
      return;
    }
    this.logger.warn(message);
    this.quiet.set(kind, { message, suppressed: 0 });
    this.timer ??= setTimeout(() => this.endInterval(), this.interval).unref();
  }

  /** Logs what is still counted (at shutdown). */
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const pending of this.quiet.values()) this.logSuppressed(pending);
    this.quiet.clear();
  }

  private endInterval(): void {
    this.timer = null;
    for (const [kind, pending] of this.quiet) {
      if (pending.suppressed === 0) {
        this.quiet.delete(kind);
        continue;
      }
      // Still coming: one summary line, and the kind stays quiet for another interval.
      this.logSuppressed(pending);
      pending.suppressed = 0;
    }
    if (this.quiet.size > 0) this.timer = setTimeout(() => this.endInterval(), this.interval).unref();
  }

  private logSuppressed(pending: Pending): void {
    if (pending.suppressed === 0) return;
    this.logger.warn(`${pending.suppressed} more like this in the last ${this.interval / 1000} s; last: ${pending.message}`);
  }
}
