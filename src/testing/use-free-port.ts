import type { RiversideModuleOptions } from '../module/riverside-options.interface.js';
import { RIVERSIDE_OPTIONS_OVERRIDE } from '../riverside.constants.js';

/** The part of `@nestjs/testing`'s TestingModuleBuilder that useFreePort uses. */
export interface OverridableModuleBuilder<Builder> {
  overrideProvider(token: unknown): { useValue(value: unknown): Builder };
}

/**
 * Runs the app's Riverside on a free port in a test, whatever `port` its `RiversideModule.forRoot`
 * names, keeping every other option. Wrap the builder of the module under test:
 *
 * ```ts
 * const moduleRef = await useFreePort(Test.createTestingModule({ imports: [AppModule] })).compile();
 * const app = moduleRef.createNestApplication();
 * await app.listen(0);
 * const url = app.get(RiversideServer).url('/ws');
 * ```
 *
 * A numeric port (or `env(...)`) becomes `0` on `127.0.0.1`, `extra` options included (e.g.
 * `{ idleTimeout: 500 }`). With `port: 'http'` the port is left alone: the WebSockets share the
 * HTTP server, so `app.listen(0)` already picks a free one.
 * @publicApi
 */
export function useFreePort<Builder>(builder: OverridableModuleBuilder<Builder>, extra: RiversideModuleOptions = {}): Builder {
  const override = (options: RiversideModuleOptions | undefined): RiversideModuleOptions => {
    const own = options ?? {};
    if (own.port === 'http') return { ...own, ...extra };
    return { ...own, port: 0, host: '127.0.0.1', ...extra };
  };
  return builder.overrideProvider(RIVERSIDE_OPTIONS_OVERRIDE).useValue(override);
}
