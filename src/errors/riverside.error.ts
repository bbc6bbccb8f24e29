/**
 * Stable, documented error codes carried by every error the library throws.
 * @publicApi
 */
export type RiversideErrorCode =
  | 'RIVERSIDE_ERR_INVALID_OPTIONS'
  | 'RIVERSIDE_ERR_INVALID_HANDLER'
  | 'RIVERSIDE_ERR_ENCODE'
  | 'RIVERSIDE_ERR_MISSING_PACKAGE'
  | 'RIVERSIDE_ERR_NOT_READY'
  | 'RIVERSIDE_ERR_DUPLICATE_MODULE'
  | 'RIVERSIDE_ERR_HANDLER_TIMEOUT'
  | 'RIVERSIDE_ERR_TOO_MANY_CHANNELS'
  | 'RIVERSIDE_ERR_ID_TOO_LONG'
  | 'RIVERSIDE_ERR_PRESENCE_META'
  | 'RIVERSIDE_ERR_PRESENCE_DISABLED';

/**
 * Base class of the errors thrown by nestjs-riverside; `code` is stable across versions.
 * @publicApi
 */
export class RiversideError extends Error {
  constructor(
    readonly code: RiversideErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}
