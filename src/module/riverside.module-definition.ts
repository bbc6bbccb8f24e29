import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { RiversideModuleOptions } from './riverside-options.interface.js';

export const {
  ConfigurableModuleClass,
  MODULE_OPTIONS_TOKEN: RIVERSIDE_MODULE_OPTIONS,
  OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<RiversideModuleOptions>({ moduleName: 'Riverside' })
  .setClassMethodName('forRoot')
  .build();
