import type { Subscription } from 'rxjs';

interface ObservableLike {
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

/**
 * Subscribes and sends each value through `session.send` in order (mapped first when `map` is
 * given); resolves with undefined on completion, rejects on the Observable's error or a value
 * that cannot be encoded. Stops early, resolving, once the connection is closed: nothing can
 * be sent any more, and an endless stream must not hold the connection.
 */
export function sendEach(
  observable: ObservableLike,
  session: { send(message: unknown): boolean; readonly isOpen: boolean },
  map: ((value: unknown) => unknown) | null,
): Promise<undefined> {
  return new Promise((resolve, reject) => {
    let subscription: Subscription | null = null;
    let finished = false;
    const finish = (error?: unknown) => {
      if (finished) return;
      finished = true;
      subscription?.unsubscribe();
      if (error === undefined) resolve(undefined);
      else reject(error);
    };
    subscription = observable.subscribe({
      next(value) {
        if (finished) return;
        try {
          if (!session.send(map === null ? value : map(value)) && !session.isOpen) finish();
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
    // A synchronous Observable finished before subscribe() returned its subscription.
    if (finished) subscription.unsubscribe();
  });
}
