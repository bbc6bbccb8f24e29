import { RiversideError } from './riverside.error.js';

/**
 * Thrown at boot when an option of `RiversideModule.forRoot()` / `forRootAsync()` is invalid.
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
