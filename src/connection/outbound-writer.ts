import type { WebSocket } from 'ws';
import type { Codec } from '../codec/codec.interface.js';
import { Frame } from '../codec/frame.js';
import { encodeWith } from '../delivery/encoded-message.js';
import { OutboundFrame, SEND_BINARY, SEND_TEXT } from '../delivery/outbound-frame.js';
import type { ResolvedRiversideOptions } from '../module/riverside-options.resolver.js';
import type { RiversideStats } from '../stats/riverside-stats.js';

/** What the writer needs from its connection: the slow-consumer close. */
export interface SlowConsumerPolicyHost {
  closeFor(reason: 'slowConsumer'): void;
}

/**
 * The outbound side of one connection: writes with the slow-consumer policy (SPEC 7.4), and the
 * deliveries held back until @OnInit is done, or (every write) while a join waits for its
 * channel's subscription, bounded like unsent bytes.
 *
 * Every size is in bytes as they go on the wire (UTF-8), never in UTF-16 units.
 */
export class OutboundWriter {
  private held: OutboundFrame[] | null = null;
  private heldBytes = 0;
  /** Joins whose channel subscription the broker has not confirmed yet. */
  private subscriptionsPending = 0;

  constructor(
    private readonly ws: WebSocket,
    private readonly options: ResolvedRiversideOptions,
    private readonly stats: RiversideStats,
    private readonly host: SlowConsumerPolicyHost,
  ) {}

  /** Deliveries held back (while @OnInit runs). */
  get heldCount(): number {
    return this.held === null ? 0 : this.held.length;
  }

  /** True while a join waits for its subscription: every write is held. */
  get holding(): boolean {
    return this.subscriptionsPending > 0;
  }

  /** Holds every write until `subscribed` settles (with the others pending); then `released`. */
  waitForSubscription(subscribed: Promise<void>, released: () => void): void {
    this.subscriptionsPending++;
    void subscribed.then(() => {
      if (--this.subscriptionsPending === 0) released();
    });
  }

  /** Encodes with the codec (a Frame as it is) and writes; false when not written. */
  send(message: unknown, codec: Codec): boolean {
    let data: string | Uint8Array;
    let binary: boolean;
    if (message instanceof Frame) {
      data = message.data;
      binary = message.type === 'binary';
    } else {
      data = encodeWith(codec, message);
      binary = codec.frameType === 'binary';
    }
    let bytes: number;
    if (typeof data === 'string') {
      bytes = Buffer.byteLength(data);
      // Node counts a queued string by its UTF-16 length: as bytes, bufferedAmount stays true.
      if (bytes !== data.length) data = Buffer.from(data);
    } else {
      bytes = data.byteLength;
    }
    if (this.subscriptionsPending > 0) return this.hold(new OutboundFrame(data, binary), 0);
    if (!this.canWrite(bytes)) return false;
    this.ws.send(data, binary ? SEND_BINARY : SEND_TEXT);
    this.stats.framesOut++;
    return true;
  }

  /** Writes an already-encoded frame; false when not written. */
  write(frame: OutboundFrame): boolean {
    if (!this.canWrite(frame.byteLength)) return false;
    frame.writeTo(this.ws);
    this.stats.framesOut++;
    return true;
  }

  /**
   * Holds a delivery until @OnInit is done. What would pass `maxBackpressure` bytes, or
   * `maxQueuedMessages` with the `alsoQueued` tasks of the connection, meets the slow-consumer policy.
   */
  hold(frame: OutboundFrame, alsoQueued: number): boolean {
    const held = (this.held ??= []);
    if (this.heldBytes + frame.byteLength > this.options.maxBackpressure || held.length + alsoQueued >= this.options.maxQueuedMessages) {
      this.refuse();
      return false;
    }
    held.push(frame);
    this.heldBytes += frame.byteLength;
    return true;
  }

  /** @OnInit is done, or the joins' subscriptions: writes what was held, in order. */
  flushHeld(): void {
    const held = this.held;
    if (held === null) return;
    this.dropHeld();
    for (const frame of held) this.write(frame);
  }

  dropHeld(): void {
    this.held = null;
    this.heldBytes = 0;
  }

  /** Open, and not a slow consumer. */
  private canWrite(bytes: number): boolean {
    const ws = this.ws;
    if (ws.readyState !== 1) return false;
    // A socket with nothing unsent is keeping up, even for a message larger than the limit.
    const buffered = ws.bufferedAmount;
    if (buffered === 0 || buffered + bytes <= this.options.maxBackpressure) return true;
    this.refuse();
    return false;
  }

  /** The slow-consumer policy: close with 3004, or drop and count. */
  refuse(): void {
    if (this.options.slowConsumer === 'close') this.host.closeFor('slowConsumer');
    else this.stats.droppedMessages++;
  }
}
