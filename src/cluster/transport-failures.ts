import type { Logger } from '@nestjs/common';
import type { RiversideStats } from '../stats/riverside-stats.js';
import { errorMessage } from '../riverside.messages.js';
import { LogThrottle } from './log-throttle.js';

/**
 * Counts every failure of the cluster transport in `stats.transportErrors`, and logs at most one
 * line per interval with how many it held back: a broker outage must not flood the log.
 */
export class TransportFailures {
  private readonly throttle = new LogThrottle();

  constructor(
    private readonly stats: RiversideStats,
    private readonly logger: Logger,
    /** What the log line starts with, e.g. "Cluster transport failed". */
    private readonly subject: string,
  ) {}

  report(what: string, error: unknown): void {
    this.stats.transportErrors++;
    const heldBack = this.throttle.take();
    if (heldBack === null) return;
    const more = heldBack > 0 ? ` (and ${heldBack} more failure(s) since the last report)` : '';
    this.logger.error(`${this.subject} ${what}: ${errorMessage(error)}${more}`);
  }
}
