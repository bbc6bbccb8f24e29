/** A writer that corked its socket during this event-loop turn. */
export interface TurnFlushable {
  /** Uncorks: everything written this turn leaves in one write. */
  flushTurn(): void;
}

const corked: TurnFlushable[] = [];
let scheduled = false;

/**
 * Flushes `writer` at the end of this event-loop turn: in the check phase, right after the I/O
 * callbacks of this loop iteration, before the loop waits again. Everything a turn writes to a
 * socket (replies to every frame of a TCP chunk, deliveries of several broadcasts that came in
 * from several sockets or a broker) then leaves in one write, and nothing waits longer than the
 * turn it was written in: with an immediate pending, the loop does not block in poll.
 *
 * One immediate serves every socket of the process. A microtask would flush after each I/O
 * callback instead, and split what several callbacks of the same turn write.
 */
export function flushAtEndOfTurn(writer: TurnFlushable): void {
  corked.push(writer);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flushAll);
  }
}

function flushAll(): void {
  scheduled = false;
  try {
    // By index: a writer added meanwhile is flushed in this same pass.
    for (let i = 0; i < corked.length; i++) corked[i].flushTurn();
  } finally {
    corked.length = 0;
  }
}
