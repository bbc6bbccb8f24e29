import type { ScheduledInfo } from './session.js';

/** The longest delay a Node timer holds; a longer one fires at once. */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/** What a timer hands its info to. */
export interface InfoTarget {
  info(info: unknown): boolean;
}

/** The pending `session.sendAfter()` timers of one connection; created on the first one. */
export class ScheduledInfos {
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly target: InfoTarget) {}

  schedule(ms: number, info: unknown): ScheduledInfo {
    const timers = this.timers;
    const timer = setTimeout(() => {
      timers.delete(timer);
      this.target.info(info);
    }, ms);
    // A pending info must not keep a shutting-down process alive; terminate clears it anyway.
    timer.unref();
    timers.add(timer);
    return {
      cancel: () => {
        clearTimeout(timer);
        timers.delete(timer);
      },
    };
  }

  clear(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }
}
