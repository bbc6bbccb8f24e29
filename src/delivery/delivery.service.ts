import { Injectable } from '@nestjs/common';
import { assertApplicationCloseCode } from '../connection/close-codes.js';
import type { Connection } from '../connection/connection.js';
import { connectionOf, type Session } from '../connection/session.js';
import { PresenceService } from '../cluster/presence/presence.service.js';
import type { PresenceMember, PresenceMembers, PresenceQueryOptions } from '../cluster/presence/presence.types.js';
import { ClusterRelay } from '../cluster/cluster-relay.js';
import { assertDeliveryTarget, type DeliveryTarget, type RiversideId } from './delivery-target.js';
import { EncodedMessage } from './encoded-message.js';
import { LocalDelivery } from './local-delivery.js';
import { SessionRegistry } from './session-registry.js';

/**
 * Delivers to a user, a session or a channel from anywhere in the app: controllers,
 * services, queue consumers. Inject it like any provider.
 *
 * ```ts
 * delivery.deliver({ user: 42 }, { type: 'notification', text: 'hi' });
 * delivery.deliver({ channel: 'room:1' }, message);   // encoded once, framed once
 * ```
 * @publicApi
 */
@Injectable()
export class DeliveryService {
  constructor(
    private readonly registry: SessionRegistry,
    private readonly local: LocalDelivery,
    private readonly relay: ClusterRelay,
    private readonly presence: PresenceService,
  ) {}

  /**
   * Sends a message to every session behind the target, encoded once per codec in use and
   * framed once; other nodes get it through the cluster transport as data and encode it with
   * their sessions' codecs the same way. Returns how many local sockets it was written to (0,
   * never a throw, when nobody is here): whether the user is reachable on another node is
   * `PresenceService.isOnline()`'s question. Throws an `EncodeError`, before writing anything,
   * when a local session's codec cannot encode the message or (in a cluster) when it cannot
   * cross nodes as structured-clone data; a `Frame` bypasses both. Plain data (plain objects and
   * arrays of strings, numbers, booleans, null) crosses nodes cheapest; a Date, Map, BigInt,
   * Buffer or class instance in it costs a native V8 serializer per message on each side.
   */
  deliver(target: DeliveryTarget, message: unknown): number {
    assertDeliveryTarget(target);
    const wire = this.relay.enabled ? this.relay.wireFor(target, message) : null;
    const written = this.local.deliver(target, new EncodedMessage(message));
    if (wire !== null) this.relay.send(target, wire);
    return written;
  }

  /**
   * Hands `info` to the `@OnInfo` of every session behind the target, in order with its
   * frames; returns how many local sessions. Other nodes get a structured-clone copy of it; in
   * a cluster, an info that cannot be cloned throws an `EncodeError` before any session gets it.
   */
  info(target: DeliveryTarget, info: unknown): number {
    assertDeliveryTarget(target);
    const wire = this.relay.enabled ? this.relay.encode(target, { kind: 'info', info }) : null;
    const reached = this.local.info(target, info);
    if (wire !== null) this.relay.send(target, wire);
    return reached;
  }

  /**
   * Closes every session behind the target (1000 or 3000-4999, a reason of at most 123 UTF-8
   * bytes, else a RangeError before anything changes); their terminate reason is 'stop'.
   */
  close(target: DeliveryTarget, code = 1000, reason = ''): number {
    assertDeliveryTarget(target);
    assertApplicationCloseCode(code, reason);
    const closed = this.local.close(target, code, reason);
    if (this.relay.enabled) this.relay.send(target, this.relay.encode(target, { kind: 'close', code, reason }));
    return closed;
  }

  /**
   * Joins a session to a channel; a second join only updates `meta`. True when newly joined.
   * Throws like `session.join()` past `maxIdLength` or `maxChannelsPerSession`.
   */
  join(session: Session, channel: RiversideId, meta?: unknown): boolean {
    return connectionOf(session).join(channel, meta);
  }

  /** Leaves one channel, or every channel when none is named; returns how many were left. */
  leave(session: Session, channel?: RiversideId): number {
    return session.leave(channel);
  }

  /** Leaves every channel; returns how many. */
  leaveAll(session: Session): number {
    return connectionOf(session).leaveAll();
  }

  isMember(session: Session, channel: RiversideId): boolean {
    return this.registry.isMember(connectionOf(session) as Connection, String(channel));
  }

  /**
   * The sessions in a channel on every live node of the cluster, with their meta and node, and
   * whether the answer is complete: `PresenceService.members()`.
   */
  members(channel: RiversideId, options?: PresenceQueryOptions): Promise<PresenceMembers> {
    return this.presence.members(channel, options);
  }

  /** The sessions in a channel on this node only, with the meta they joined with; synchronous. */
  localMembers(channel: RiversideId): PresenceMember[] {
    return this.presence.localMembers(channel);
  }

  channelsOf(session: Session): string[] {
    return connectionOf(session).channels();
  }
}
