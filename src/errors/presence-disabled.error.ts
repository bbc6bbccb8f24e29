import { RiversideError } from './riverside.error.js';

/**
 * Thrown by the PresenceService's cluster-wide queries (`members`, `count`, `isOnline`,
 * `sessionsOf`) and `on()` when the module runs with `presence: false`: no node keeps a copy of
 * the others' sessions, so nothing could answer for the cluster.
 * @publicApi
 */
export class PresenceDisabledError extends RiversideError {
  constructor(method: string) {
    super(
      'RIVERSIDE_ERR_PRESENCE_DISABLED',
      `PresenceService.${method}() needs cluster presence, which is off (RiversideModule option presence: false). ` +
        "Remove that option to turn it on, or use localMembers()/localCount() for this node's sessions.",
    );
  }
}
