import { RiversideError } from './riverside.error.js';

/**
 * Thrown by `session.join(channel, meta)` (and `DeliveryService.join`) when `meta` cannot be
 * replicated to the other nodes: it is not JSON-serializable, or its JSON is larger than the
 * `maxMetaSize` option. Nothing was joined.
 * @publicApi
 */
export class PresenceMetaError extends RiversideError {
  constructor(message: string, options?: ErrorOptions) {
    super('RIVERSIDE_ERR_PRESENCE_META', message, options);
  }
}
