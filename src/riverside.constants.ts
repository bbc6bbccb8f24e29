/** Metadata keys written by the decorators and read once, at bootstrap, by the explorer. */
export const RIVERSIDE_HANDLER_METADATA = 'riverside:handler';
export const ON_AUTHENTICATE_METADATA = 'riverside:on_authenticate';
export const ON_INIT_METADATA = 'riverside:on_init';
export const ON_MESSAGE_METADATA = 'riverside:on_message';
export const ON_INFO_METADATA = 'riverside:on_info';
export const ON_TERMINATE_METADATA = 'riverside:on_terminate';

/**
 * DI token of a function applied to the module's options before they are resolved; the
 * identity unless a test overrides it (`useFreePort` in nestjs-riverside/testing).
 */
export const RIVERSIDE_OPTIONS_OVERRIDE = Symbol('RIVERSIDE_OPTIONS_OVERRIDE');

/** DI token of the options after defaults, env indirection and validation. */
export const RIVERSIDE_RESOLVED_OPTIONS = Symbol('RIVERSIDE_RESOLVED_OPTIONS');
