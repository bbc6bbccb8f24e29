export * from './codec.interface.js';
export * from './json.codec.js';
export * from './raw-text.codec.js';
export * from './raw-binary.codec.js';
export * from './message-pack.codec.js';
export * from './frame.js';
