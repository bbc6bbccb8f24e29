/**
 * What the presence trackers of the nodes tell each other on the presence topic, as JSON
 * (`p` is the protocol version). Every message names its sender node `n`.
 *
 * - `hello`: a node started; every other node answers with its `state`. `i: 1` says the sender
 *   receives states on its own presence topic (`presence:<n>`); without it (a node of an earlier
 *   version), states for it go on the shared topic.
 * - `hb`: a heartbeat, with the sender's latest delta sequence number `s` (so a lost delta is
 *   noticed within a heartbeat even on a quiet node).
 * - `delta`: changes of the sender's own sessions, numbered `s` = previous + 1.
 * - `sync`: `n` asks node `to` for its state (a gap in `to`'s sequence, or an unknown node); `i`
 *   as in `hello`.
 * - `state`: all of the sender's sessions and memberships as of sequence `s`, in `parts` parts
 *   (so that no message outgrows a broker's payload limit, NATS' 1 MiB by default), on the
 *   asker's own topic, or on the shared one when most nodes asked at once.
 * - `bye`: the sender is shutting down cleanly; drop its entries now.
 */
export type PresenceOp =
  /** A session opened: userId, sessionId. */
  | readonly ['s+', string, string]
  /** A session closed. */
  | readonly ['s-', string, string]
  /** A session joined a channel (or changed its meta): channel, userId, sessionId, meta. */
  | readonly ['m+', string, string, string, unknown]
  /** A session left a channel: channel, userId, sessionId, reason. */
  | readonly ['m-', string, string, string, 'left' | 'disconnected'];

export type PresenceMessage =
  | { readonly p: 1; readonly t: 'hello'; readonly n: string; readonly i?: 1 }
  | { readonly p: 1; readonly t: 'hb'; readonly n: string; readonly s: number }
  | { readonly p: 1; readonly t: 'delta'; readonly n: string; readonly s: number; readonly ops: readonly PresenceOp[] }
  | { readonly p: 1; readonly t: 'sync'; readonly n: string; readonly to: string; readonly i?: 1 }
  | {
      readonly p: 1;
      readonly t: 'state';
      readonly n: string;
      readonly s: number;
      readonly part: number;
      readonly parts: number;
      readonly ops: readonly PresenceOp[];
    }
  | { readonly p: 1; readonly t: 'bye'; readonly n: string };

/** Above this, a delta or state is split over several messages. */
export const MAX_MESSAGE_BYTES = 256 * 1024;

/**
 * Encodes ops (each already JSON) into as few messages as fit MAX_MESSAGE_BYTES; `head` is the
 * JSON of the message without its `ops`, and `part(i, parts)` adds the part numbers to a state.
 */
export function packOps(encodedOps: readonly string[], head: (part: number, parts: number) => string): Buffer[] {
  const groups: string[][] = [[]];
  let size = 0;
  for (const op of encodedOps) {
    if (size + op.length > MAX_MESSAGE_BYTES && groups[groups.length - 1].length > 0) {
      groups.push([]);
      size = 0;
    }
    groups[groups.length - 1].push(op);
    size += op.length + 1;
  }
  return groups.map((group, index) => Buffer.from(`${head(index, groups.length).slice(0, -1)},"ops":[${group.join(',')}]}`));
}

export function encodePresence(message: PresenceMessage): Buffer {
  return Buffer.from(JSON.stringify(message));
}

const TYPES = new Set(['hello', 'hb', 'delta', 'sync', 'state', 'bye']);

/** Null for anything that is not a presence message of this version (it is ignored). */
export function decodePresence(payload: Uint8Array): PresenceMessage | null {
  let message: { p?: unknown; t?: unknown; n?: unknown; s?: unknown; ops?: unknown };
  try {
    message = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString());
  } catch {
    return null;
  }
  if (typeof message !== 'object' || message === null || message.p !== 1) return null;
  if (typeof message.t !== 'string' || !TYPES.has(message.t) || typeof message.n !== 'string') return null;
  if ((message.t === 'hb' || message.t === 'delta' || message.t === 'state') && !Number.isInteger(message.s)) return null;
  if ((message.t === 'delta' || message.t === 'state') && !Array.isArray(message.ops)) return null;
  return message as PresenceMessage;
}
