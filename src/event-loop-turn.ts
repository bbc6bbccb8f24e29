/**
 * What lasts one event-loop turn: the sockets corked by their first write of the turn, and the
 * coarse clock. Both end in the check phase, right after the I/O callbacks of this loop
 * iteration and before the loop waits again, in one immediate shared by every socket.
 */

/** A writer that corked its socket during this event-loop turn. */
export interface TurnFlushable {
  /** Uncorks: everything written this turn leaves in one write. */
  flushTurn(): void;
}

/**
 * The writers to flush, `corkedCount` of them. The array is kept across turns rather than
 * emptied with `length = 0`, which would free its backing store and make the next broadcast to
 * thousands of members grow it again, copy by copy; flushed slots are cleared so that no closed
 * connection is kept alive by it.
 */
const corked: (TurnFlushable | null)[] = [];
let corkedCount = 0;
/**
 * The frames writers keep back this turn (see OutboundWriter), `keptCount` of them: each
 * broadcast's frame once, however many members keep it, and cleared at the end of the turn.
 */
const kept: (Buffer | null)[] = [];
let keptCount = 0;
let scheduled = false;
/** performance.now() as first read this turn; -1 when not read yet. */
let clock = -1;

/**
 * Flushes `writer` at the end of this event-loop turn. Everything a turn writes to a socket
 * (replies to every frame of a TCP chunk, deliveries of several broadcasts that came in from
 * several sockets or a broker) then leaves in one write, and nothing waits longer than the turn
 * it was written in: with an immediate pending, the loop does not block in poll.
 *
 * A microtask would flush after each I/O callback instead, and split what several callbacks of
 * the same turn write.
 */
export function flushAtEndOfTurn(writer: TurnFlushable): void {
  corked[corkedCount++] = writer;
  if (!scheduled) schedule();
}

/**
 * Keeps `chunk` until the end of this turn; returns its slot for keptForTurn(). The members of
 * one broadcast keep the same frame one after the other, so it takes one slot.
 */
export function keepForTurn(chunk: Buffer): number {
  const last = keptCount - 1;
  if (last >= 0 && kept[last] === chunk) return last;
  kept[keptCount] = chunk;
  if (!scheduled) schedule();
  return keptCount++;
}

/** The frame kept in `slot` this turn. */
export function keptForTurn(slot: number): Buffer {
  return kept[slot] as Buffer;
}

/**
 * Monotonic whole milliseconds, read once per event-loop turn: what the flood window, the idle
 * sweep and the handler timeout need, without a clock read per frame. Within a turn it lags the
 * real clock by at most the time the turn has run (plus under 1 ms of rounding down).
 *
 * Whole: V8 keeps a small integer in the field itself, but boxes a fractional number in a heap
 * number of its own, 16 bytes for each timestamp every connection keeps.
 */
export function turnNow(): number {
  if (clock < 0) {
    clock = Math.floor(performance.now());
    if (!scheduled) schedule();
  }
  return clock;
}

function schedule(): void {
  scheduled = true;
  setImmediate(endOfTurn);
}

function endOfTurn(): void {
  scheduled = false;
  clock = -1;
  let next = 0;
  try {
    // By index: a writer added meanwhile is flushed in this same pass.
    while (next < corkedCount) {
      const writer = corked[next] as TurnFlushable;
      corked[next++] = null;
      writer.flushTurn();
    }
  } finally {
    if (next < corkedCount) {
      // A flush threw (the error goes on): the writers not reached are flushed in a next pass,
      // and the frames they keep stay where their slots say.
      const left = corkedCount - next;
      corked.copyWithin(0, next, corkedCount);
      for (let slot = left; slot < corkedCount; slot++) corked[slot] = null;
      corkedCount = left;
      schedule();
    } else {
      corkedCount = 0;
      for (let slot = 0; slot < keptCount; slot++) kept[slot] = null;
      keptCount = 0;
    }
  }
}
