import type { DeliveryTarget } from '../delivery/delivery-target.js';

/**
 * The one place topic names are built. A transport puts its own prefix in front:
 * `<prefix>:user:42`, `<prefix>:session:42/3f9a...`, `<prefix>:channel:room-1`.
 *
 * These names are a public contract: services in any language can publish to them (see the
 * README's cluster section), so they never change shape without a major version.
 */
export function userTopic(userId: string): string {
  return `user:${userId}`;
}

/** '/' and '%' in a user id are escaped so that `user/session` splits one way only. */
export function sessionTopic(userId: string, sessionId: string): string {
  return `session:${userId.replace(/%/g, '%25').replace(/\//g, '%2F')}/${sessionId}`;
}

export function channelTopic(channel: string): string {
  return `channel:${channel}`;
}

/** Where other services publish `{ recipients, data }` envelopes (the `bridge` option). */
export const BRIDGE_TOPIC = 'bridge';

/**
 * Where the nodes' presence trackers talk (heartbeats, membership deltas, state transfers):
 * `<prefix>:presence:cluster` on Redis, `<prefix>.presence.cluster` on NATS.
 */
export const PRESENCE_TOPIC = 'presence:cluster';

export function topicOf(target: DeliveryTarget): string {
  if (target.channel != null) return channelTopic(String(target.channel));
  if (target.user != null) return userTopic(String(target.user));
  const [userId, sessionId] = target.session!;
  return sessionTopic(String(userId), String(sessionId));
}
