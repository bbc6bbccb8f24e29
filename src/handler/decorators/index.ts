export * from './riverside-handler.decorator.js';
export * from './on-authenticate.decorator.js';
export * from './on-init.decorator.js';
export * from './on-message.decorator.js';
export * from './on-info.decorator.js';
export * from './on-terminate.decorator.js';
