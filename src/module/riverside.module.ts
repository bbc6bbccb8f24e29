import { Global, Module } from '@nestjs/common';
import { DiscoveryModule, ModuleRef, ModulesContainer } from '@nestjs/core';
import { RIVERSIDE_CODEC, type Codec } from '../codec/codec.interface.js';
import { resolveCodec } from '../codec/codec.resolver.js';
import { PresenceService } from '../cluster/presence/presence.service.js';
import { PresenceTracker } from '../cluster/presence/presence.tracker.js';
import { ClusterRelay } from '../cluster/cluster-relay.js';
import { DeliveryService } from '../delivery/delivery.service.js';
import { LocalDelivery } from '../delivery/local-delivery.js';
import { SessionRegistry } from '../delivery/session-registry.js';
import { HandlerMetadataAccessor } from '../handler/handler-metadata.accessor.js';
import { HandlerExplorer } from '../handler/handler.explorer.js';
import { RIVERSIDE_OPTIONS_OVERRIDE, RIVERSIDE_RESOLVED_OPTIONS } from '../riverside.constants.js';
import { RiversideServer } from '../server/riverside.server.js';
import { RiversideHealthIndicator } from '../stats/riverside-health.indicator.js';
import { RiversideMetrics } from '../stats/riverside-metrics.js';
import { RiversideStats } from '../stats/riverside-stats.js';
import { RIVERSIDE_TRANSPORT } from '../cluster/transport.interface.js';
import { ConfigurableModuleClass, RIVERSIDE_MODULE_OPTIONS } from './riverside.module-definition.js';
import { type ResolvedRiversideOptions, resolveRiversideOptions } from './riverside-options.resolver.js';
import type { RiversideModuleOptions } from './riverside-options.interface.js';
import { assertSingleRiversideModule } from './single-module.check.js';

/** What a test may put under RIVERSIDE_OPTIONS_OVERRIDE: the options in, the options to use out. */
type RiversideOptionsOverride = (options: RiversideModuleOptions | undefined) => RiversideModuleOptions | undefined;

/** Token of the provider that fails the boot when forRoot is imported more than once. */
const SINGLE_MODULE_CHECK = Symbol('RIVERSIDE_SINGLE_MODULE_CHECK');

/**
 * Riverside for NestJS. Import it once, in the root module:
 *
 * ```ts
 * @Module({ imports: [RiversideModule.forRoot({ port: 3000 })], providers: [ChatHandler] })
 * export class AppModule {}
 * ```
 *
 * `forRootAsync({ imports, inject, useFactory })` takes the options from other providers
 * (e.g. ConfigService). The module is global: `DeliveryService` is injectable everywhere.
 * @publicApi
 */
@Global()
@Module({
  imports: [DiscoveryModule],
  providers: [
    {
      provide: SINGLE_MODULE_CHECK,
      useFactory: (container: ModulesContainer) => assertSingleRiversideModule(container, RiversideModule),
      inject: [ModulesContainer],
    },
    { provide: RIVERSIDE_OPTIONS_OVERRIDE, useValue: (options: RiversideModuleOptions | undefined) => options },
    {
      provide: RIVERSIDE_RESOLVED_OPTIONS,
      useFactory: (options: RiversideModuleOptions | undefined, override: RiversideOptionsOverride) =>
        resolveRiversideOptions(override(options)),
      inject: [RIVERSIDE_MODULE_OPTIONS, RIVERSIDE_OPTIONS_OVERRIDE],
    },
    {
      provide: RIVERSIDE_CODEC,
      useFactory: (options: ResolvedRiversideOptions, moduleRef: ModuleRef): Promise<Codec> =>
        resolveCodec(options.codec, moduleRef, 'codec'),
      inject: [RIVERSIDE_RESOLVED_OPTIONS, ModuleRef],
    },
    {
      provide: RIVERSIDE_TRANSPORT,
      useFactory: (options: ResolvedRiversideOptions) => options.transport,
      inject: [RIVERSIDE_RESOLVED_OPTIONS],
    },
    HandlerMetadataAccessor,
    HandlerExplorer,
    SessionRegistry,
    RiversideStats,
    RiversideMetrics,
    RiversideHealthIndicator,
    LocalDelivery,
    ClusterRelay,
    PresenceTracker,
    PresenceService,
    DeliveryService,
    RiversideServer,
  ],
  exports: [
    DeliveryService,
    PresenceService,
    RiversideServer,
    RiversideStats,
    RiversideHealthIndicator,
    RIVERSIDE_CODEC,
    RIVERSIDE_TRANSPORT,
  ],
})
export class RiversideModule extends ConfigurableModuleClass {}
