import { invalidDeliveryTargetMessage } from '../riverside.messages.js';

/** A user or channel id: compared as strings, so 1 and '1' are the same id. @publicApi */
export type RiversideId = string | number;

/**
 * Who a delivery is for: every session of a user, one session, or every member of a channel.
 * @publicApi
 */
export type DeliveryTarget =
  | { readonly user: RiversideId; readonly session?: never; readonly channel?: never }
  | { readonly session: readonly [userId: RiversideId, sessionId: string]; readonly user?: never; readonly channel?: never }
  | { readonly channel: RiversideId; readonly user?: never; readonly session?: never };
// The `?: never` members make a target naming two recipients a compile error (a plain union
// would accept `{ user, channel }`); assertDeliveryTarget refuses it at runtime.

/**
 * Throws a TypeError unless `target` names exactly one recipient. A few property reads: cheap
 * enough for every delivery, and it turns `{ user, channel }` (which used to reach one of
 * them) or `{ user: undefined }` (nobody) into a loud error at the call site.
 */
export function assertDeliveryTarget(target: DeliveryTarget): void {
  if (typeof target === 'object' && target !== null) {
    const named = (target.user != null ? 1 : 0) + (target.session != null ? 1 : 0) + (target.channel != null ? 1 : 0);
    if (named === 1 && (target.session == null || (Array.isArray(target.session) && target.session.length === 2))) return;
  }
  throw new TypeError(invalidDeliveryTargetMessage(target));
}
