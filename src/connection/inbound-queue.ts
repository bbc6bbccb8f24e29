/** What a queued task is: a frame from the socket or an info from the app. */
export const TASK_FRAME = 0;
export const TASK_INFO = 1;

/** What a queued frame costs beyond its payload, so that empty frames are bounded too. */
const QUEUED_FRAME_OVERHEAD = 64;

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
  /** Payload bytes of the queued frames, with a fixed overhead each; infos count nothing. */
  private queuedBytes = 0;

  get bytes(): number {
    return this.queuedBytes;
  }

  /** Tasks waiting. */
  get length(): number {
    return (this.tasks.length - this.head) / 3;
  }

  get isEmpty(): boolean {
    return this.head === this.tasks.length;
  }

  pushFrame(data: Buffer, isBinary: boolean): void {
    this.tasks.push(TASK_FRAME, data, isBinary);
    this.queuedBytes += data.length + QUEUED_FRAME_OVERHEAD;
  }

  pushInfo(info: unknown): void {
    this.tasks.push(TASK_INFO, info, false);
  }

  /** Removes the next task, a frame, and returns its payload. */
  takeFrame(): Buffer {
    const data = this.take() as Buffer;
    this.queuedBytes -= data.length + QUEUED_FRAME_OVERHEAD;
    return data;
  }

  /** The kind of the next task; call before take(). */
  peekKind(): number {
    return this.tasks[this.head] as number;
  }

  /** The binary flag of the next task (frames); call before take(). */
  peekBinary(): boolean {
    return this.tasks[this.head + 2] as boolean;
  }

  /** Removes the next task and returns its value (takeFrame for frames, which count bytes). */
  take(): unknown {
    const tasks = this.tasks;
    const head = this.head;
    const value = tasks[head + 1];
    tasks[head + 1] = undefined;
    this.head = head + 3;
    if (this.head === tasks.length) {
      // Emptied: the array is reused from its start.
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
    this.queuedBytes = 0;
  }
}
