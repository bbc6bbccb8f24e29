export * from './riverside.error.js';
export * from './invalid-options.error.js';
export * from './invalid-handler-class.error.js';
export * from './encode.error.js';
export * from './missing-package.error.js';
export * from './handler-timeout.error.js';
export * from './presence-meta.error.js';
export * from './presence-disabled.error.js';
