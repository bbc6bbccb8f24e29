import { RiversideError } from './riverside.error.js';

/**
 * Thrown when an option is invalid: of `RiversideModule.forRoot()` / `forRootAsync()` at boot,
 * or of a transport (`RedisTransport`, `NatsTransport`) when it is constructed.
 * `option` is the dotted path of the offending option (e.g. `transmissionLimit.capacity`).
 * @publicApi
 */
export class InvalidOptionsError extends RiversideError {
  constructor(
    readonly option: string,
    message: string,
  ) {
    super('RIVERSIDE_ERR_INVALID_OPTIONS', message);
  }
}
