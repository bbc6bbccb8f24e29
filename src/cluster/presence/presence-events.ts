import { Logger } from '@nestjs/common';
import type { PresenceEvent, PresenceListener } from './presence.types.js';

/**
 * The presence listeners of this node. Events are queued and handed out after the current
 * synchronous work (a join inside a handler, a connection's teardown), in order, so that a
 * listener never runs in the middle of the registry's bookkeeping; a listener that throws is
 * logged and the others still run.
 */
export class PresenceEvents {
  private readonly listeners = new Set<PresenceListener>();
  private readonly queue: PresenceEvent[] = [];
  private draining = false;
  private readonly logger = new Logger('Riverside');

  get active(): boolean {
    return this.listeners.size > 0;
  }

  add(listener: PresenceListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  emit(event: PresenceEvent): void {
    if (this.listeners.size === 0) return;
    this.queue.push(event);
    if (this.draining) return;
    this.draining = true;
    queueMicrotask(() => this.drain());
  }

  private drain(): void {
    // Events emitted by a listener join the end of this same drain.
    for (let index = 0; index < this.queue.length; index++) {
      const event = this.queue[index];
      for (const listener of this.listeners) {
        try {
          listener(event);
        } catch (error) {
          const cause = error instanceof Error ? error : new Error(String(error));
          this.logger.error(`A presence listener threw on a ${event.type} of ${event.channel}: ${cause.message}`, cause.stack);
        }
      }
    }
    this.queue.length = 0;
    this.draining = false;
  }
}
