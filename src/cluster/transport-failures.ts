import type { Logger } from '@nestjs/common';
import type { RiversideStats } from '../stats/riverside-stats.js';

const LOG_INTERVAL_MS = 5000;

/**
 * Counts every failure of the cluster transport in `stats.transportErrors`, and logs at most one
 * line per interval with how many it held back: a broker outage must not flood the log.
 */
export class TransportFailures {
  private lastLoggedAt = -Infinity;
  private unlogged = 0;

  constructor(
    private readonly stats: RiversideStats,
    private readonly logger: Logger,
    /** What the log line starts with, e.g. "Cluster transport failed". */
    private readonly subject: string,
  ) {}

  report(what: string, error: unknown): void {
    this.stats.transportErrors++;
    const now = Date.now();
    if (now - this.lastLoggedAt < LOG_INTERVAL_MS) {
      this.unlogged++;
      return;
    }
    const more = this.unlogged > 0 ? ` (and ${this.unlogged} more failure(s) since the last report)` : '';
    this.lastLoggedAt = now;
    this.unlogged = 0;
    this.logger.error(`${this.subject} ${what}: ${error instanceof Error ? error.message : String(error)}${more}`);
  }
}
