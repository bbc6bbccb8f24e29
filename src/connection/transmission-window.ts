/**
 * The state of Riverside's transmission limiter. The connection carries these two fields itself
 * (no object of their own per connection).
 */
export interface TransmissionWindow {
  /** When the current window started (ms); the handshake time at first, as in Riverside. */
  windowStart: number;
  /** Frames counted in the current window. */
  windowCount: number;
}

/**
 * Riverside's transmission limiter, exactly (reference A12): a fixed window that starts at the
 * first frame after the previous one expired. Within a window, at most `capacity - 1` frames
 * pass; the `capacity`-th is refused. The frame that opens a new window always passes.
 *
 * Counts a frame at `now` (ms); false when it is the capacity-th of its window.
 */
export function admitTransmission(window: TransmissionWindow, now: number, capacity: number, duration: number): boolean {
  if (window.windowStart + duration < now) {
    window.windowStart = now;
    window.windowCount = 1;
    return true;
  }
  return ++window.windowCount < capacity;
}
