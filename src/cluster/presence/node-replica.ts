import type { PresenceOp } from './presence-message.js';
import type { PresenceMember } from './presence.types.js';

/** A length prefix keeps 'a/b'+'c' and 'a'+'b/c' apart. */
export function memberKey(userId: string, sessionId: string): string {
  return `${userId.length}:${userId}/${sessionId}`;
}

/** What applying an op changed, for the events a revived node's entries produce. */
export type ReplicaChange =
  | { readonly kind: 'join' | 'update'; readonly channel: string; readonly member: PresenceMember }
  | { readonly kind: 'leave'; readonly channel: string; readonly member: PresenceMember };

/**
 * This node's copy of another node's sessions and memberships, and what is known of that node's
 * liveness. Applied from the node's deltas in sequence order, or replaced by its state.
 */
export class NodeReplica {
  /** The sequence number of the last delta (or state) applied. */
  seq = 0;
  /** Local monotonic time (ms) of the last message heard from the node. */
  lastHeard: number;
  /** True until a state of the node has been applied: its entries are missing or partial. */
  syncing = true;
  /** Declared down earlier and heard from again: its entries come back as join events. */
  revived = false;
  /** When the last `sync` request went out (monotonic ms), to repeat it if unanswered. */
  syncRequestedAt = -Infinity;
  /** Sync requests sent since its state was last applied (a repeat asks for it on the shared topic). */
  syncRequests = 0;
  /** Deltas that arrived while syncing, applied on top of the state when it comes. */
  buffered: { s: number; ops: readonly PresenceOp[] }[] = [];
  /** The parts of a state being received: its sequence number and the parts so far. */
  incoming: { s: number; parts: (readonly PresenceOp[] | undefined)[]; received: number } | null = null;

  /**
   * Each user's sessions on the node: the session id itself while the user has one (most users,
   * and a one-element Set costs ~90 bytes more per entry), a Set from the second on.
   */
  readonly sessions = new Map<string, string | Set<string>>();
  readonly channels = new Map<string, Map<string, PresenceMember>>();

  constructor(
    readonly nodeId: string,
    now: number,
  ) {
    this.lastHeard = now;
  }

  /** Applies ops in order; `changes`, when given, collects what changed. */
  apply(ops: readonly PresenceOp[], changes?: ReplicaChange[]): void {
    for (const op of ops) {
      switch (op[0]) {
        case 's+': {
          const [, userId, sessionId] = op;
          const sessions = this.sessions.get(userId);
          if (sessions === undefined) this.sessions.set(userId, sessionId);
          else if (typeof sessions !== 'string') sessions.add(sessionId);
          else if (sessions !== sessionId) this.sessions.set(userId, new Set([sessions, sessionId]));
          break;
        }
        case 's-': {
          const [, userId, sessionId] = op;
          const sessions = this.sessions.get(userId);
          if (sessions === sessionId) this.sessions.delete(userId);
          else if (typeof sessions === 'object' && sessions.delete(sessionId) && sessions.size === 1) {
            this.sessions.set(userId, sessions.values().next().value!);
          }
          break;
        }
        case 'm+': {
          const [, channel, userId, sessionId, meta] = op;
          let members = this.channels.get(channel);
          if (!members) this.channels.set(channel, (members = new Map()));
          const key = memberKey(userId, sessionId);
          const isNew = !members.has(key);
          const member: PresenceMember = Object.freeze({ userId, sessionId, meta, node: this.nodeId });
          members.set(key, member);
          changes?.push({ kind: isNew ? 'join' : 'update', channel, member });
          break;
        }
        case 'm-': {
          const [, channel, userId, sessionId] = op;
          const members = this.channels.get(channel);
          const key = memberKey(userId, sessionId);
          const member = members?.get(key);
          if (!member) break;
          members!.delete(key);
          if (members!.size === 0) this.channels.delete(channel);
          changes?.push({ kind: 'leave', channel, member });
          break;
        }
      }
    }
  }

  /** The user's session ids on the node (none when it has none). */
  sessionsOf(userId: string): Iterable<string> {
    const sessions = this.sessions.get(userId);
    if (sessions === undefined) return [];
    return typeof sessions === 'string' ? [sessions] : sessions;
  }

  /** Replaces every entry by the node's state. */
  replace(ops: readonly PresenceOp[]): void {
    this.sessions.clear();
    this.channels.clear();
    this.apply(ops);
  }

  /** Every membership, for the leave events of a node declared down. */
  *memberships(): Generator<{ channel: string; member: PresenceMember }> {
    for (const [channel, members] of this.channels) for (const member of members.values()) yield { channel, member };
  }
}
