import { Inject, Injectable } from '@nestjs/common';
import type { ResolvedRiversideOptions } from '../module/riverside-options.resolver.js';
import { RIVERSIDE_RESOLVED_OPTIONS } from '../riverside.constants.js';
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
 * @publicApi
 */
@Injectable()
export class RiversideHealthIndicator {
  constructor(
    private readonly server: RiversideServer,
    private readonly stats: RiversideStats,
    @Inject(RIVERSIDE_RESOLVED_OPTIONS) private readonly options: ResolvedRiversideOptions,
  ) {}

  isHealthy<const Key extends string = 'riverside'>(key: Key = 'riverside' as Key): RiversideHealthResult<Key> {
    const accepting = this.server.isAccepting;
    const details = {
      status: accepting ? ('up' as const) : ('down' as const),
      connections: this.stats.currentConnections,
      maxConnections: this.options.maxConnections,
      transportErrors: this.stats.transportErrors,
      ...(!accepting && { message: 'not accepting connections (starting or shutting down)' }),
    };
    return { [key]: details } as RiversideHealthResult<Key>;
  }
}
