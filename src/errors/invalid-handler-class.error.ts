import { RiversideError } from './riverside.error.js';

/**
 * Thrown at boot when a `@RiversideHandler` class is malformed (two `@OnMessage` methods,
 * two handlers on one path, a request-scoped handler...).
 * @publicApi
 */
export class InvalidHandlerClassError extends RiversideError {
  constructor(message: string) {
    super('RIVERSIDE_ERR_INVALID_HANDLER', message);
  }
}
