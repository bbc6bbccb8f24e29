import { describe, expect, it } from 'vitest';
import { admitTransmission, type TransmissionWindow } from '../../src/connection/transmission-window.js';

// Riverside's test/limitter_test.exs (reference B3, algorithm A12), ported literally.
// Riverside reads its clock from a stack of fixture timestamps (1_500_000_000 + a .. b):
// `new()` takes one value and every `countup` takes the next one. Here the stack is explicit.
const DURATION = 100;
const CAPACITY = 10;
const BASE = 1_500_000_000;

/** setup_timestamps(a..b): the clock values handed out one per call, in order. */
function timestamps(from: number, to: number): () => number {
  let next = from;
  return () => {
    if (next > to) throw new Error(`timestamp fixture ${from}..${to} exhausted`);
    return BASE + next++;
  };
}

/** TransmissionLimitter.new(): the window starts at the first timestamp. */
function newWindow(clock: () => number): TransmissionWindow {
  return { windowStart: clock(), windowCount: 0 };
}

/** step(l, d, c, n): n countups, 'error' at the first refused one. */
function step(window: TransmissionWindow, clock: () => number, n: number): 'ok' | 'error' {
  for (let i = 0; i < n; i++) {
    if (!admitTransmission(window, clock(), CAPACITY, DURATION)) return 'error';
  }
  return 'ok';
}

describe('the transmission window', () => {
  describe('admitTransmission', () => {
    it('has enough capacity for capacity - 1 frames within the window (enough capacity for step-count)', () => {
      const clock = timestamps(1, 100);
      const window = newWindow(clock); // t = 1
      expect(step(window, clock, 9)).toBe('ok'); // t = 2..10: counts 1..9
    });

    it('refuses the capacity-th frame within the window (not enough capacity for step-count)', () => {
      const clock = timestamps(1, 100);
      const window = newWindow(clock);
      expect(step(window, clock, 10)).toBe('error'); // the 10th, at t = 11, reaches count 10
    });

    // As in the original, rounds 2 and 3 restart from the untouched limitter1 (count 0,
    // started at t = 1): Elixir structs are immutable, so a fresh window at t = 1 is that state.
    it('opens a new window for a frame after the duration (over capacity after duration)', () => {
      const limitter1 = () => newWindow(timestamps(1, 1));
      let clock = timestamps(2, 100);
      expect(step(limitter1(), clock, 9)).toBe('ok');
      clock = timestamps(200, 300); // 1 + 100 < 200: the first countup resets to count 1
      expect(step(limitter1(), clock, 9)).toBe('ok');
      clock = timestamps(300, 400);
      expect(step(limitter1(), clock, 9)).toBe('ok');
    });

    it('refuses the capacity-th frame of the new window too (over capacity on second duration)', () => {
      const limitter1 = () => newWindow(timestamps(1, 1));
      let clock = timestamps(2, 100);
      expect(step(limitter1(), clock, 9)).toBe('ok');
      clock = timestamps(200, 300); // reset at t = 200 (count 1); t = 201..209 bring it to 10
      expect(step(limitter1(), clock, 10)).toBe('error');
    });

    it('resets the count of a window carried over at count 9 when the duration has passed', () => {
      let clock = timestamps(1, 100);
      const window = newWindow(clock);
      expect(step(window, clock, 9)).toBe('ok'); // count 9, started at t = 1
      clock = timestamps(200, 300);
      expect(step(window, clock, 9)).toBe('ok'); // t = 200 resets to 1; t = 201..208 reach 9
      expect(step(window, clock, 1)).toBe('error'); // t = 209: count 10
    });

    it('counts a frame at exactly start + duration in the old window', () => {
      const window: TransmissionWindow = { windowStart: 0, windowCount: 0 };
      for (let t = 1; t < CAPACITY; t++) expect(admitTransmission(window, t, CAPACITY, DURATION)).toBe(true);
      expect(admitTransmission(window, DURATION, CAPACITY, DURATION)).toBe(false);
    });

    it('with capacity 1 refuses a frame inside a live window and admits the one that opens a window', () => {
      const window: TransmissionWindow = { windowStart: 0, windowCount: 0 };
      expect(admitTransmission(window, 50, 1, DURATION)).toBe(false);
      expect(admitTransmission(window, 101, 1, DURATION)).toBe(true);
    });
  });
});
