import { Inject, Injectable } from '@nestjs/common';
import type { RiversideId } from '../../delivery/delivery-target.js';
import { SessionRegistry } from '../../delivery/session-registry.js';
import { PresenceDisabledError } from '../../errors/presence-disabled.error.js';
import type { ResolvedRiversideOptions } from '../../module/riverside-options.resolver.js';
import { RIVERSIDE_RESOLVED_OPTIONS } from '../../riverside.constants.js';
import { PresenceTracker } from './presence.tracker.js';
import type {
  PresenceCompleteness,
  PresenceCount,
  PresenceListener,
  PresenceMember,
  PresenceMembers,
  PresenceOnline,
  PresenceQueryOptions,
  PresenceSession,
  PresenceSessions,
} from './presence.types.js';

/**
 * Who is in a channel and who is online, across the cluster; and the join/leave events of
 * channels. Inject it like any provider.
 *
 * ```ts
 * const { members, complete, missingNodes } = await presence.members('room:1');
 * if ((await presence.isOnline(42)).online) ...
 * presence.on((event) => event.type === 'leave' && delivery.deliver({ channel: event.channel }, { left: event.userId }));
 * ```
 *
 * Queries answer from this node's replica of every node's entries (no round trip to the other
 * nodes): they wait only while a node's state is still arriving (a node that just started),
 * never longer than their `timeout`, and say in `complete`/`missingNodes` what they could not
 * vouch for. With the default LocalTransport they read this node's registry. With the module option
 * `presence: false` the cluster-wide queries and `on()` throw a `PresenceDisabledError`.
 * @publicApi
 */
@Injectable()
export class PresenceService {
  private readonly defaultTimeout: number;
  private readonly enabled: boolean;

  constructor(
    private readonly tracker: PresenceTracker,
    private readonly registry: SessionRegistry,
    @Inject(RIVERSIDE_RESOLVED_OPTIONS) options: ResolvedRiversideOptions,
  ) {
    this.defaultTimeout = 2 * options.presenceHeartbeat;
    this.enabled = options.presence;
  }

  /** This node's id, as in `PresenceMember.node`: random per process start. */
  get nodeId(): string {
    return this.tracker.nodeId;
  }

  /** Every session in the channel on every live node, with its meta and node. */
  async members(channel: RiversideId, options?: PresenceQueryOptions): Promise<PresenceMembers> {
    this.assertEnabled('members');
    const completeness = await this.settle(options);
    const members = this.localMembers(channel);
    this.tracker.membersOf(String(channel), members);
    return { members, ...completeness };
  }

  /** How many sessions are in the channel on every live node. */
  async count(channel: RiversideId, options?: PresenceQueryOptions): Promise<PresenceCount> {
    this.assertEnabled('count');
    const completeness = await this.settle(options);
    const name = String(channel);
    let count = this.registry.channels().get(name)?.size ?? 0;
    for (const replica of this.tracker.replicas.values()) count += replica.channels.get(name)?.size ?? 0;
    return { count, ...completeness };
  }

  /** Whether the user has a session on any live node (channels or not). */
  async isOnline(userId: RiversideId, options?: PresenceQueryOptions): Promise<PresenceOnline> {
    this.assertEnabled('isOnline');
    const id = String(userId);
    if (this.registry.connectionsOf(id).size > 0) return { online: true, complete: true, missingNodes: [] };
    const completeness = await this.settle(options);
    let online = false;
    for (const replica of this.tracker.replicas.values()) {
      if (!replica.sessions.has(id)) continue;
      // Found on a node that is live and in sequence: that settles it, whatever the others say.
      if (this.tracker.isCurrent(replica)) return { online: true, complete: true, missingNodes: [] };
      online = true;
    }
    return { online, ...completeness };
  }

  /** Every session of the user on every live node. */
  async sessionsOf(userId: RiversideId, options?: PresenceQueryOptions): Promise<PresenceSessions> {
    this.assertEnabled('sessionsOf');
    const completeness = await this.settle(options);
    const id = String(userId);
    const sessions: PresenceSession[] = [];
    for (const connection of this.registry.connectionsOf(id)) {
      sessions.push({ userId: id, sessionId: connection.session.id, node: this.tracker.nodeId });
    }
    for (const replica of this.tracker.replicas.values()) {
      for (const sessionId of replica.sessionsOf(id)) sessions.push({ userId: id, sessionId, node: replica.nodeId });
    }
    return { sessions, ...completeness };
  }

  /** The channel's sessions on this node only, synchronously. */
  localMembers(channel: RiversideId): PresenceMember[] {
    const members = this.registry.channels().get(String(channel));
    const result: PresenceMember[] = [];
    if (!members) return result;
    const node = this.tracker.nodeId;
    for (const [connection, meta] of members) result.push({ userId: connection.session.userId, sessionId: connection.session.id, meta, node });
    return result;
  }

  /** How many of the channel's sessions are on this node, synchronously. */
  localCount(channel: RiversideId): number {
    return this.registry.channels().get(String(channel))?.size ?? 0;
  }

  /**
   * Calls `listener` with every join, meta update and leave of every channel, once across the
   * cluster (see {@link PresenceEvent}); returns the function that removes it. Listeners run
   * after the change, never inside `session.join()`; one that throws is logged.
   */
  on(listener: PresenceListener): () => void {
    this.assertEnabled('on');
    return this.tracker.events.add(listener);
  }

  /** With `presence: false` nothing can answer for the cluster: refused, never a partial answer. */
  private assertEnabled(method: string): void {
    if (!this.enabled) throw new PresenceDisabledError(method);
  }

  private async settle(options: PresenceQueryOptions | undefined): Promise<PresenceCompleteness> {
    const timeout = options?.timeout ?? this.defaultTimeout;
    if (!(typeof timeout === 'number' && timeout >= 0 && Number.isFinite(timeout))) {
      throw new TypeError(`A presence query's timeout is a number of ms (>= 0), got ${String(timeout)}`);
    }
    const waiting = this.tracker.settled(timeout);
    if (waiting) await waiting;
    const missingNodes = this.tracker.missingNodes();
    return { complete: missingNodes.length === 0 && this.tracker.isWarm, missingNodes };
  }
}
