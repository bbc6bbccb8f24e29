import type { Connection } from './connection.js';

/** The sweep runs at most this often, and at least once a second. */
const MIN_INTERVAL_MS = 10;
const MAX_INTERVAL_MS = 1000;

/**
 * One timer for the idle and age limits of every connection (SPEC 7.5): nothing is armed per
 * connection. It ticks at a tenth of the shortest limit, so a limit is enforced at most that
 * late.
 */
export class ConnectionSweep {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly connections: Iterable<Connection>,
    private readonly idleTimeout: number,
    private readonly maxConnectionAge: number,
    private readonly now: () => number,
  ) {}

  start(): void {
    const shortest = Math.min(this.idleTimeout, this.maxConnectionAge);
    if (shortest === Infinity || this.timer !== null) return;
    const interval = Math.max(MIN_INTERVAL_MS, Math.min(MAX_INTERVAL_MS, Math.floor(shortest / 10)));
    this.timer = setInterval(() => this.sweep(), interval);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private sweep(): void {
    const now = this.now();
    for (const connection of this.connections) {
      // A connection whose socket is paused (its handler is behind) is silent because of us.
      if (!connection.readPaused && now - connection.lastSeen >= this.idleTimeout) connection.closeFor('idleTimeout');
      else if (connection.openedAt !== 0 && now - connection.openedAt >= this.maxConnectionAge) connection.closeFor('overAge');
    }
  }
}
