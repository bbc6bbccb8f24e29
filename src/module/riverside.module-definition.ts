import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { RiversideModuleOptions } from './riverside-options.interface.js';

const definition = new ConfigurableModuleBuilder<RiversideModuleOptions>({ moduleName: 'Riverside' })
  .setClassMethodName('forRoot')
  .build();

export const { ConfigurableModuleClass, OPTIONS_TYPE, ASYNC_OPTIONS_TYPE } = definition;

/**
 * The DI token of the options given to `RiversideModule.forRoot` / `forRootAsync`, as given
 * (before defaults and validation). Override it in a test to change options of an existing
 * module, e.g. `.overrideProvider(RIVERSIDE_MODULE_OPTIONS).useValue({ port: 0 })`; see
 * `useFreePort` in `nestjs-riverside/testing` for the ready-made recipe.
 * @publicApi
 */
export const RIVERSIDE_MODULE_OPTIONS: string | symbol = definition.MODULE_OPTIONS_TOKEN;
