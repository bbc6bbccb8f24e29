import { Injectable } from '@nestjs/common';
import type { Connection } from '../connection/connection.js';
import { channelTopic, userTopic } from '../cluster/topics.js';
import type { DeliveryTarget } from './delivery-target.js';

/**
 * Told of every session and membership change of this node, as it happens (the presence
 * tracker). `checkMeta` runs before a join changes anything and may throw to refuse it.
 */
export interface MembershipListener {
  checkMeta(meta: unknown): void;
  sessionOpened(connection: Connection): void;
  sessionClosed(connection: Connection): void;
  joined(connection: Connection, channel: string, meta: unknown, isNew: boolean): void;
  left(connection: Connection, channel: string, meta: unknown, disconnected: boolean): void;
}

/** Told when this node gains its first session behind a topic, and when it loses the last. */
export interface TopicListener {
  topicOpened(topic: string): void;
  topicClosed(topic: string): void;
  /** Settles once the broker has confirmed the topic's subscription (bounded); null when it has. */
  subscriptionPending(topic: string): Promise<void> | null;
}

const NO_CONNECTIONS: ReadonlySet<Connection> = new Set();

/**
 * A user's connections: the connection itself while it is the only one (most users), a Set
 * from the second on. An idle connection then costs the registry one map entry, not a Set.
 */
type UserBucket = Connection | Set<Connection>;

/**
 * The connections behind a delivery target: the connection itself when a user or session target
 * finds exactly one (most users have one session: no one-element set per delivery), else a set or
 * map of them, empty when there are none. Read it with {@link isLoneConnection}.
 */
export type ResolvedTarget = Connection | ReadonlySet<Connection> | ReadonlyMap<Connection, unknown>;

/** Whether a target resolved to one connection rather than a collection. */
export function isLoneConnection(found: ResolvedTarget): found is Connection {
  return !(found instanceof Set) && !(found instanceof Map);
}

/**
 * The sessions of this node, indexed by user, by session and by channel. The only place that
 * knows who is connected here; DeliveryService and the server read it.
 */
@Injectable()
export class SessionRegistry {
  /** Every open connection of this node. */
  readonly connections = new Set<Connection>();
  /** Sessions are found among their user's connections: a user has few, and no key is built. */
  private readonly byUser = new Map<string, UserBucket>();
  private readonly byChannel = new Map<string, Map<Connection, unknown>>();
  private listener: TopicListener | null = null;
  private membership: MembershipListener | null = null;

  /** The cluster relay listens, to subscribe only to topics this node has sessions for. */
  setTopicListener(listener: TopicListener): void {
    this.listener = listener;
  }

  /** The presence tracker listens, to replicate this node's sessions and memberships. */
  setMembershipListener(listener: MembershipListener): void {
    this.membership = listener;
  }

  add(connection: Connection): void {
    const { userId } = connection.session;
    this.connections.add(connection);
    this.membership?.sessionOpened(connection);
    const bucket = this.byUser.get(userId);
    // One topic per user: deliveries to one of its sessions ride on it (see topics.ts).
    if (bucket === undefined) {
      this.byUser.set(userId, connection);
      this.listener?.topicOpened(userTopic(userId));
    } else if (bucket instanceof Set) {
      bucket.add(connection);
    } else {
      this.byUser.set(userId, new Set([bucket, connection]));
    }
  }

  remove(connection: Connection): void {
    if (!this.connections.delete(connection)) return;
    const { userId } = connection.session;
    this.leaveChannels(connection, true);
    this.membership?.sessionClosed(connection);
    const bucket = this.byUser.get(userId);
    if (bucket === connection) {
      this.byUser.delete(userId);
      this.listener?.topicClosed(userTopic(userId));
    } else if (bucket instanceof Set && bucket.delete(connection) && bucket.size === 1) {
      // Back to the plain connection when one is left.
      this.byUser.set(userId, bucket.values().next().value as Connection);
    }
  }

  /** Connections behind a target; empty (never a throw) when there are none. */
  resolve(target: DeliveryTarget): ResolvedTarget {
    if (target.channel != null) return this.byChannel.get(String(target.channel)) ?? NO_CONNECTIONS;
    if (target.user != null) return this.byUser.get(String(target.user)) ?? NO_CONNECTIONS;
    if (Array.isArray(target.session)) {
      const [userId, sessionId] = target.session;
      return this.sessionConnections(String(userId), String(sessionId));
    }
    throw new TypeError(
      'A delivery target is { user: id }, { session: [userId, sessionId] } or { channel: id }, got ' +
        JSON.stringify(target),
    );
  }

  /** The connections of one session: its user's, with that session id. */
  private sessionConnections(userId: string, sessionId: string): ResolvedTarget {
    const bucket = this.byUser.get(userId);
    if (bucket === undefined) return NO_CONNECTIONS;
    if (!(bucket instanceof Set)) return bucket.session.id === sessionId ? bucket : NO_CONNECTIONS;
    let found: Set<Connection> | null = null;
    for (const connection of bucket) if (connection.session.id === sessionId) (found ??= new Set()).add(connection);
    return found ?? NO_CONNECTIONS;
  }

  /** Joins or updates meta; true when the membership is new. */
  join(connection: Connection, channel: string, meta: unknown): boolean {
    this.membership?.checkMeta(meta);
    let members = this.byChannel.get(channel);
    if (!members) {
      this.byChannel.set(channel, (members = new Map()));
      this.listener?.topicOpened(channelTopic(channel));
    }
    const isNew = !members.has(connection);
    members.set(connection, meta);
    if (isNew) (connection.joined ??= new Set()).add(channel);
    this.membership?.joined(connection, channel, meta, isNew);
    return isNew;
  }

  leave(connection: Connection, channel: string): boolean {
    const members = this.byChannel.get(channel);
    const meta = members?.get(connection);
    if (!members?.delete(connection)) return false;
    if (members.size === 0) this.channelEmptied(channel);
    connection.joined?.delete(channel);
    this.membership?.left(connection, channel, meta, false);
    return true;
  }

  leaveAll(connection: Connection): number {
    return this.leaveChannels(connection, false);
  }

  /** `disconnected`: the session is going away, rather than leaving by choice. */
  private leaveChannels(connection: Connection, disconnected: boolean): number {
    const joined = connection.joined;
    if (!joined) return 0;
    const count = joined.size;
    for (const channel of joined) {
      const members = this.byChannel.get(channel);
      const meta = members?.get(connection);
      if (members?.delete(connection)) {
        if (members.size === 0) this.channelEmptied(channel);
        this.membership?.left(connection, channel, meta, disconnected);
      }
    }
    connection.joined = null;
    return count;
  }

  /** Every channel with a member on this node, and its members' connections and meta. */
  channels(): ReadonlyMap<string, ReadonlyMap<Connection, unknown>> {
    return this.byChannel;
  }

  /** The connections of a user on this node. */
  connectionsOf(userId: string): ReadonlySet<Connection> {
    const bucket = this.byUser.get(userId);
    return bucket === undefined ? NO_CONNECTIONS : bucket instanceof Set ? bucket : new Set([bucket]);
  }

  private channelEmptied(channel: string): void {
    this.byChannel.delete(channel);
    this.listener?.topicClosed(channelTopic(channel));
  }

  /**
   * Settles once other nodes' broadcasts to the channel reach this node (bounded); null when
   * they already do, or when there is no cluster.
   */
  channelSubscription(channel: string): Promise<void> | null {
    return this.listener?.subscriptionPending(channelTopic(channel)) ?? null;
  }

  isMember(connection: Connection, channel: string): boolean {
    return this.byChannel.get(channel)?.has(connection) ?? false;
  }

  channelsOf(connection: Connection): string[] {
    return connection.joined ? [...connection.joined] : [];
  }
}
