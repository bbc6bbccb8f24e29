/** What a queued task is: a frame from the socket or an info from the app. */
export const TASK_FRAME = 0;
export const TASK_INFO = 1;

/** Reclaim the handled prefix of the array once it is this long and at least half of it. */
const COMPACT_AFTER = 3 * 1024;

/**
 * The frames and infos that wait, in order, while a callback of their connection is in flight.
 *
 * Flat (`[kind, value, isBinary, kind, value, isBinary...]`) so that queuing a frame allocates
 * nothing. A task's slot is cleared as soon as it is taken, so a handled frame's Buffer is
 * collectable at once even while later ones still wait; the handled prefix itself is reclaimed
 * when the queue empties, or compacted once it dominates the array.
 */
export class InboundQueue {
  private tasks: unknown[] = [];
  private head = 0;
  /** Payload bytes of the queued frames, with a fixed overhead each (see the connection). */
  bytes = 0;

  /** Tasks waiting. */
  get length(): number {
    return (this.tasks.length - this.head) / 3;
  }

  get isEmpty(): boolean {
    return this.head === this.tasks.length;
  }

  push(kind: number, value: unknown, isBinary: boolean, bytes: number): void {
    this.tasks.push(kind, value, isBinary);
    this.bytes += bytes;
  }

  /** The kind of the next task; call before take(). */
  peekKind(): number {
    return this.tasks[this.head] as number;
  }

  /** The binary flag of the next task (frames); call before take(). */
  peekBinary(): boolean {
    return this.tasks[this.head + 2] as boolean;
  }

  /** Removes the next task and returns its value; the caller accounts for its bytes. */
  take(): unknown {
    const tasks = this.tasks;
    const head = this.head;
    const value = tasks[head + 1];
    tasks[head + 1] = undefined;
    this.head = head + 3;
    if (this.head === tasks.length) {
      // Emptied: the array is reused from its start (its bytes are the caller's to account).
      tasks.length = 0;
      this.head = 0;
    } else if (this.head >= COMPACT_AFTER && this.head * 2 >= tasks.length) {
      tasks.splice(0, this.head);
      this.head = 0;
    }
    return value;
  }

  /** Forgets every task (the connection is closing: nothing queued will be handled). */
  clear(): void {
    this.tasks.length = 0;
    this.head = 0;
    this.bytes = 0;
  }
}
