/**
 * Calls back every `period` ms at the instants of the wall clock's grid of `period` (whole seconds
 * for 1000), whenever it was started. Processes that each run one fire at about the same instant:
 * what they send each other then arrives together and is read in a few wake-ups, not one each.
 *
 * Only the phase comes from the wall clock. A timer that fires a little off the grid aims at the
 * instant after the one it was aimed at (no double beat); a wall clock stepped forward, or a
 * process paused past an instant, aims at the grid's next instant from now; a wall clock stepped
 * back never stretches a period beyond `period`.
 */
export class GridInterval {
  private timer: NodeJS.Timeout | null = null;
  /** The wall-clock instant (ms) the next call is aimed at. */
  private next = -Infinity;

  constructor(
    private readonly period: number,
    private readonly callback: () => void,
  ) {}

  start(): void {
    if (this.timer === null) this.schedule();
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    const now = Date.now();
    let next = this.next + this.period;
    if (next <= now || next - now > this.period) next = now - (now % this.period) + this.period;
    this.next = next;
    this.timer = setTimeout(() => {
      this.schedule();
      this.callback();
    }, next - now);
    // Never what keeps a process alive.
    this.timer.unref();
  }
}
