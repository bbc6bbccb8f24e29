import { Injectable } from '@nestjs/common';
import { RiversideServer } from '../server/riverside.server.js';
import { RiversideStats } from './riverside-stats.js';

/**
 * The shape `@nestjs/terminus` expects from a health indicator (no import of terminus needed).
 * @publicApi
 */
export type RiversideHealthResult<Key extends string = string> = Record<
  Key,
  { status: 'up' | 'down'; connections: number; maxConnections: number; transportErrors: number; message?: string }
>;

/**
 * A health indicator for `@nestjs/terminus`: up while the server accepts connections.
 *
 * ```ts
 * @Get('health') @HealthCheck()
 * check() { return this.health.check([() => this.riverside.isHealthy()]); }
 * ```
 *
 * RiversideModule provides it globally: inject it anywhere. Listing it in a module's
 * `providers` as well is harmless (it only depends on exported providers).
 * @publicApi
 */
@Injectable()
export class RiversideHealthIndicator {
  constructor(
    private readonly server: RiversideServer,
    private readonly stats: RiversideStats,
  ) {}

  isHealthy<const Key extends string = 'riverside'>(key: Key = 'riverside' as Key): RiversideHealthResult<Key> {
    const accepting = this.server.isAccepting;
    const details = {
      status: accepting ? ('up' as const) : ('down' as const),
      connections: this.stats.currentConnections,
      maxConnections: this.server.options.maxConnections,
      transportErrors: this.stats.transportErrors,
      ...(!accepting && { message: 'not accepting connections (starting or shutting down)' }),
    };
    return { [key]: details } as RiversideHealthResult<Key>;
  }
}
