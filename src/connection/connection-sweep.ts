import type { Connection } from './connection.js';

/** The sweep runs at most this often, and at least once a second. */
const MIN_INTERVAL_MS = 10;
const MAX_INTERVAL_MS = 1000;

/** The limits the sweep enforces, in ms (Infinity: not enforced). */
export interface SweptLimits {
  readonly idleTimeout: number;
  readonly maxConnectionAge: number;
  readonly handlerTimeout: number;
}

/**
 * One timer for the idle and age limits of every connection (SPEC 7.5) and for callbacks
 * still pending after their socket closed (handlerTimeout): nothing is armed per connection.
 * It ticks at a tenth of the shortest limit, so a limit is enforced at most that late.
 */
export class ConnectionSweep {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly connections: Iterable<Connection>,
    private readonly limits: SweptLimits,
    private readonly now: () => number,
  ) {}

  start(): void {
    const { idleTimeout, maxConnectionAge, handlerTimeout } = this.limits;
    const shortest = Math.min(idleTimeout, maxConnectionAge, handlerTimeout);
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
    const { idleTimeout, maxConnectionAge } = this.limits;
    // A copy only when a connection is released: abandonCallback() removes it from the set.
    let abandoned: Connection[] | null = null;
    for (const connection of this.connections) {
      if (connection.abandonAt !== 0) {
        if (now >= connection.abandonAt) (abandoned ??= []).push(connection);
      } else if (!connection.readPaused && now - connection.lastSeen >= idleTimeout) {
        // A connection whose socket is paused (its handler is behind) is silent because of us.
        connection.closeFor('idleTimeout');
      } else if (connection.openedAt !== 0 && now - connection.openedAt >= maxConnectionAge) {
        connection.closeFor('overAge');
      }
    }
    if (abandoned !== null) for (const connection of abandoned) connection.abandonCallback();
  }
}
