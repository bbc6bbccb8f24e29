import type { Subscription } from 'rxjs';

/** The part of an rxjs Observable Riverside uses. */
export interface ObservableLike {
  subscribe(observer: { next(value: unknown): void; error(error: unknown): void; complete(): void }): Subscription;
}

/** rxjs's own test (an Observable of another rxjs copy counts too), without importing rxjs. */
export function isObservableLike(value: unknown): value is ObservableLike {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { subscribe?: unknown }).subscribe === 'function' &&
    typeof (value as { lift?: unknown }).lift === 'function'
  );
}

/** A returned Observable being sent; `cancel()` unsubscribes and resolves `done`. */
export interface ObservableReply {
  readonly done: Promise<undefined>;
  cancel(): void;
}

/**
 * Subscribes and sends each value with `send` in order (mapped first when `map` is given).
 * `done` resolves on completion (or `cancel()`), and rejects on the Observable's error or a value
 * that cannot be encoded.
 */
export function sendEach(
  observable: ObservableLike,
  send: (message: unknown) => unknown,
  map: ((value: unknown) => unknown) | null,
): ObservableReply {
  let subscription: Subscription | null = null;
  let finished = false;
  let finish!: (error?: unknown) => void;
  const done = new Promise<undefined>((resolve, reject) => {
    finish = (error?: unknown) => {
      if (finished) return;
      finished = true;
      subscription?.unsubscribe();
      if (error === undefined) resolve(undefined);
      else reject(error);
    };
  });
  subscription = observable.subscribe({
    next(value) {
      if (finished) return;
      try {
        send(map === null ? value : map(value));
      } catch (error) {
        finish(error ?? new Error('undefined thrown'));
      }
    },
    error(error) {
      finish(error ?? new Error('Observable errored with undefined'));
    },
    complete() {
      finish();
    },
  });
  // A synchronous Observable finished (or the connection closed) before subscribe() returned.
  if (finished) subscription.unsubscribe();
  return { done, cancel: () => finish() };
}
