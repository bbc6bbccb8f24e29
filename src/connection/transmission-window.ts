/**
 * Riverside's transmission limiter, exactly (reference A12): a fixed window that starts at the
 * first frame after the previous one expired. Within a window, at most `capacity - 1` frames
 * pass; the `capacity`-th is refused. The frame that opens a new window always passes.
 */
export class TransmissionWindow {
  private count = 0;

  /** `start` is the handshake time, as in Riverside. */
  constructor(private start: number) {}

  /** Counts a frame at `now` (ms); false when it is the capacity-th of its window. */
  admit(now: number, capacity: number, duration: number): boolean {
    if (this.start + duration < now) {
      this.start = now;
      this.count = 1;
      return true;
    }
    return ++this.count < capacity;
  }
}
