/**
 * A session in a channel, somewhere in the cluster.
 * @publicApi
 */
export interface PresenceMember {
  readonly userId: string;
  readonly sessionId: string;
  /** What the session joined with (`session.join(channel, meta)`), as JSON carries it. */
  readonly meta: unknown;
  /** The node the session is connected to (its `PresenceService.nodeId`). */
  readonly node: string;
}

/**
 * A session of a user, somewhere in the cluster.
 * @publicApi
 */
export interface PresenceSession {
  readonly userId: string;
  readonly sessionId: string;
  readonly node: string;
}

/**
 * How much of the cluster a presence answer covers.
 *
 * `complete: true`: every node this node knows of is live and its entries are up to date (as of
 * its last heartbeat, at most `presenceHeartbeat` ms ago, plus broker latency).
 * `complete: false`: the nodes in `missingNodes` did not heartbeat in time (suspected down: their
 * entries are included as last known, until `presenceTimeout` removes them) or their state had
 * not arrived by the query's deadline (their entries are missing or partial).
 * @publicApi
 */
export interface PresenceCompleteness {
  readonly complete: boolean;
  readonly missingNodes: readonly string[];
}

/** What `PresenceService.members()` answers: the channel's members on every live node. @publicApi */
export interface PresenceMembers extends PresenceCompleteness {
  readonly members: PresenceMember[];
}

/** What `PresenceService.count()` answers. @publicApi */
export interface PresenceCount extends PresenceCompleteness {
  readonly count: number;
}

/** What `PresenceService.isOnline()` answers; `complete` is true whenever `online` is. @publicApi */
export interface PresenceOnline extends PresenceCompleteness {
  readonly online: boolean;
}

/** What `PresenceService.sessionsOf()` answers: the user's sessions on every live node. @publicApi */
export interface PresenceSessions extends PresenceCompleteness {
  readonly sessions: PresenceSession[];
}

/**
 * Options of a presence query.
 * @publicApi
 */
export interface PresenceQueryOptions {
  /**
   * How long the query may wait for nodes whose state is still arriving (a node that just
   * started, or one catching up after lost messages), in ms. @default 2 × presenceHeartbeat
   */
  timeout?: number;
}

/**
 * Why a member left: `left` (session.leave / leaveAll), `disconnected` (its connection ended),
 * `node-down` (its node stopped heartbeating for `presenceTimeout`, or announced its shutdown
 * with members still listed).
 * @publicApi
 */
export type PresenceLeaveReason = 'left' | 'disconnected' | 'node-down';

/**
 * A change of a channel's membership, delivered once across the cluster: on the node of the
 * session (join, update, leave), or, for the members of a node that died, on one live node (the
 * one with the lowest node id).
 * @publicApi
 */
export type PresenceEvent =
  | ({ readonly type: 'join'; readonly channel: string } & PresenceMember)
  | ({ readonly type: 'update'; readonly channel: string } & PresenceMember)
  | ({ readonly type: 'leave'; readonly channel: string; readonly reason: PresenceLeaveReason } & PresenceMember);

/** Receives presence events: see `PresenceService.on()`. @publicApi */
export type PresenceListener = (event: PresenceEvent) => void;
