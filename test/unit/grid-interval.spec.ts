import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { GridInterval } from '../../src/cluster/presence/grid-interval.js';

// The presence heartbeat's clock: calls on the wall clock's grid of its period, whatever the wall
// clock does (test/cluster/presence-heartbeats.e2e-spec.ts shows the nodes in step).
/** Two hours into the epoch, so that an hour's step back keeps the wall clock positive. */
const BASE = 7_200_000;

describe('GridInterval', () => {
  let calls: number[];
  let interval: GridInterval;
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(BASE + 250);
    calls = [];
    interval = new GridInterval(1000, () => calls.push(Date.now()));
  });
  afterEach(() => {
    interval.stop();
    vi.useRealTimers();
  });

  it('calls at the grid instants after its start, whenever it started', () => {
    interval.start();
    vi.advanceTimersByTime(3000);
    expect(calls).toEqual([BASE + 1000, BASE + 2000, BASE + 3000]);
  });

  it('keeps to the grid, not stretching a period, when the wall clock is stepped back', () => {
    interval.start();
    vi.advanceTimersByTime(750);
    expect(calls).toEqual([BASE + 1000]);
    // An hour back (an NTP step): the next call still comes within a period, then on the grid.
    vi.setSystemTime(Date.now() - 3_600_000);
    vi.advanceTimersByTime(1000);
    expect(calls).toHaveLength(2);
    vi.advanceTimersByTime(2000);
    expect(calls).toHaveLength(4);
    expect(calls.slice(2).map((at) => at % 1000)).toEqual([0, 0]);
  });

  it('re-aligns on the next grid instant when the wall clock is stepped forward', () => {
    interval.start();
    vi.advanceTimersByTime(750);
    vi.setSystemTime(Date.now() + 5_400);
    // The call already aimed comes a period after the last, off the grid; the next is on it.
    vi.advanceTimersByTime(1000);
    expect(calls).toEqual([BASE + 1000, BASE + 7_400]);
    vi.advanceTimersByTime(600);
    expect(calls).toEqual([BASE + 1000, BASE + 7_400, BASE + 8_000]);
  });

  it('calls no more once stopped, even from inside a call', () => {
    const stopping = new GridInterval(1000, () => {
      calls.push(Date.now());
      stopping.stop();
    });
    stopping.start();
    vi.advanceTimersByTime(5000);
    expect(calls).toEqual([BASE + 1000]);
  });
});
