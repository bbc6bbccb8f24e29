import type { DeliveryTarget } from '../delivery/delivery-target.js';

/**
 * The one place topic names are built. A transport puts its own prefix in front (Redis
 * `<prefix>:user:42`, NATS `<prefix>.user.42`).
 *
 * Node-to-node topics: `user:<id>` (every target of a user, one session included: the session
 * id travels in the message and the receiving node picks the session) and `channel:<id>`. A
 * node subscribes to the users and channels it has sessions in, never per session.
 *
 * External topics, where services in any language publish raw bytes (README "Publishing from
 * other services"): `ext:user:<id>`, `ext:session:<userId>/<sessionId>`, `ext:channel:<id>`, and
 * `bridge` for `{ recipients, data }` envelopes. These names are a public contract: they never
 * change shape without a major version.
 */
export function userTopic(userId: string): string {
  return `user:${userId}`;
}

/** '/' and '%' in a user id are escaped so that `user/session` splits one way only. */
export function sessionTopic(userId: string, sessionId: string): string {
  return `session:${escapeUserId(userId)}/${sessionId}`;
}

export function channelTopic(channel: string): string {
  return `channel:${channel}`;
}

/** The namespace of external publishers: `ext:` + a user, session or channel topic. */
export const EXTERNAL_PREFIX = 'ext:';

/** Where other services publish `{ recipients, data }` envelopes (the `bridge` option). */
export const BRIDGE_TOPIC = 'bridge';

/**
 * Where the nodes' presence trackers talk (heartbeats, membership deltas, state transfers):
 * `<prefix>:presence:cluster` on Redis, `<prefix>.presence.cluster` on NATS.
 */
export const PRESENCE_TOPIC = 'presence:cluster';

/** Whether `topic` is one of the presence trackers' (the shared one or a node's own). */
export function isPresenceTopic(topic: string): boolean {
  return topic.startsWith('presence:');
}

/**
 * A node's own presence topic, where the other nodes send their state when it asks for it
 * (`<prefix>:presence:<nodeId>`; node ids are 16 hex digits, never `cluster`).
 */
export function presenceInboxTopic(nodeId: string): string {
  return `presence:${nodeId}`;
}

/**
 * Where the nodes of a `ShardedTransport` say, on each broker, which of their shards they take
 * that broker for (`<prefix>:shards`), so that a node listing the brokers in another order is
 * found at once.
 */
export const SHARD_LAYOUT_TOPIC = 'shards';

/** The node-to-node topic a target's messages travel on. */
export function topicOf(target: DeliveryTarget): string {
  if (target.channel != null) return channelTopic(String(target.channel));
  if (target.user != null) return userTopic(String(target.user));
  return userTopic(String(target.session![0]));
}

/** The target behind a user, session or channel topic (without `ext:`); null for anything else. */
export function targetOfTopic(topic: string): DeliveryTarget | null {
  if (topic.startsWith('user:')) return { user: topic.slice(5) };
  if (topic.startsWith('channel:')) return { channel: topic.slice(8) };
  if (topic.startsWith('session:')) {
    const name = topic.slice(8);
    const slash = name.indexOf('/');
    if (slash < 0) return null;
    return { session: [unescapeUserId(name.slice(0, slash)), name.slice(slash + 1)] };
  }
  return null;
}

function escapeUserId(userId: string): string {
  return userId.replace(/%/g, '%25').replace(/\//g, '%2F');
}

export function unescapeUserId(escaped: string): string {
  return escaped.replace(/%2F|%25/g, (escape) => (escape === '%2F' ? '/' : '%'));
}
