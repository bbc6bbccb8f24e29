/** A user or channel id: compared as strings, so 1 and '1' are the same id. @publicApi */
export type RiversideId = string | number;

/**
 * Who a delivery is for: every session of a user, one session, or every member of a channel.
 * @publicApi
 */
export type DeliveryTarget =
  | { readonly user: RiversideId }
  | { readonly session: readonly [userId: RiversideId, sessionId: string] }
  | { readonly channel: RiversideId };
