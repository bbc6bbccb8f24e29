/**
 * Handshake deadlines with one timer for all of them (SPEC 7.5: no timer per connection). Every
 * handshake gets the same timeout, so insertion order is deadline order and a sweep stops at the
 * first handshake still in time. A deadline fires up to one tick (a tenth of the timeout, 10 ms to
 * 1 s) late.
 */
export class HandshakeDeadlines {
  private readonly pending = new Map<object, { readonly deadline: number; readonly expire: () => void }>();
  private readonly tick: number;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly timeout: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tick = Math.min(1000, Math.max(10, Math.floor(timeout / 10)));
  }

  /** Calls `expire` once `timeout` ms have passed, unless `delete(key)` came first. */
  add(key: object, expire: () => void): void {
    this.pending.set(key, { deadline: this.now() + this.timeout, expire });
    this.timer ??= setInterval(this.sweep, this.tick).unref();
  }

  delete(key: object): void {
    // The timer stops at its next tick if nothing is left: stopping here would re-arm it for
    // nearly every handshake of a steady stream.
    this.pending.delete(key);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private readonly sweep = (): void => {
    const now = this.now();
    for (const [key, entry] of this.pending) {
      if (entry.deadline > now) break;
      this.pending.delete(key);
      entry.expire();
    }
    if (this.pending.size === 0) this.stop();
  };
}
