import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { Codec } from '../codec/codec.interface.js';
import { Frame } from '../codec/frame.js';
import { encodeWith } from '../delivery/encoded-message.js';
import { OutboundFrame, SEND_BINARY, SEND_TEXT } from '../delivery/outbound-frame.js';
import { frameBytes, frameString } from '../delivery/wire-frame.js';
import type { ResolvedRiversideOptions } from '../module/riverside-options.resolver.js';
import type { RiversideStats } from '../stats/riverside-stats.js';
import { flushAtEndOfTurn, keepForTurn, keptForTurn, type TurnFlushable } from '../event-loop-turn.js';

/** What the writer needs from its connection: the slow-consumer close. */
export interface SlowConsumerPolicyHost {
  closeFor(reason: 'slowConsumer'): void;
}

/**
 * Past this many bytes corked in one turn, a socket is flushed at once: the kernel then says
 * whether the client keeps up, so the slow-consumer check stays exact to within this much, and
 * a large burst is not held in memory until the end of the turn.
 */
export const TURN_FLUSH_BYTES = 16 * 1024;

interface WsInternals {
  _socket: Socket;
  _extensions: Record<string, unknown>;
}

/**
 * The outbound side of one connection: writes with the slow-consumer policy (SPEC 7.4), and the
 * deliveries held back until @OnInit is done, or (every write) while a join waits for its
 * channel's subscription, bounded like unsent bytes.
 *
 * Coalescing: the first write of an event-loop turn corks the socket, and the end of the turn
 * (src/event-loop-turn.ts) uncorks it, so that everything written to it in one turn leaves in one
 * write. A delivery that is the turn's first write is not corked but kept back (one buffer,
 * `pendingSlot`) and written at the end of the turn: a socket that gets one frame per turn (a
 * broadcast's member) costs one plain socket write, as with raw ws; a second write in the turn
 * corks the socket behind it. Replies are always corked: ws's answer to a close frame read in
 * the same TCP chunk as the frame replied to then leaves after the reply, as it always did.
 * Before the connection closes, what is kept back is written ahead of the close frame.
 *
 * Replies and deliveries alike are framed by hand into one buffer and written to the TCP socket
 * directly; ws.send() is used only when an extension (permessage-deflate) rewrites payloads.
 * Without an extension ws's sender never queues a frame (it queues only behind a compression
 * or the read of a Blob, and Riverside hands ws no Blob), so a frame written to the socket
 * directly cannot overtake one ws still holds, and the socket's own buffer is all that is
 * unsent. (ws's pongs and close frame go through that same idle sender.)
 *
 * Every size is in bytes as they go on the wire (UTF-8), never in UTF-16 units.
 */
export class OutboundWriter implements TurnFlushable {
  private readonly ws: WebSocket;
  private readonly socket: Socket;
  /** No extension negotiated: frames are written without ws.send(). Fixed at the handshake. */
  private readonly plain: boolean;
  /**
   * The turn's first frame, kept back until the end of the turn or a second frame: its slot in
   * the turn's kept frames (keepForTurn), -1 when none. A slot number rather than the buffer: a
   * broadcast's frame is a young object, and storing it in thousands of long-lived writers
   * would give the scavenger thousands of old-to-young references to record and update.
   */
  private pendingSlot: number;
  private corked: boolean;
  private flushQueued: boolean;
  /**
   * The socket had nothing unsent at the end of this writer's last turn, and nothing has been
   * written to it since: its bufferedAmount is 0 without reading it. Reading it at the turn's
   * first write touches the socket's stream state and ws's sender, which a broadcast to
   * thousands of members otherwise does not touch until the end of the turn; at the end of the
   * turn, right after the write, that state is at hand. Only ws writes behind the writer's back:
   * pongs (see `wsWrote`) and the close frame (then the socket is no longer open).
   */
  private drained: boolean;
  /** Bytes written (or kept back) this turn. */
  private corkedBytes: number;
  /** ws.bufferedAmount at the turn's first write: what earlier turns left unsent. */
  private unsentBefore: number;
  /** Joins whose channel subscription the broker has not confirmed yet. */
  private subscriptionsPending: number;
  private readonly stats: RiversideStats;
  private readonly options: ResolvedRiversideOptions;
  private readonly host: SlowConsumerPolicyHost;
  private held: OutboundFrame[] | null;
  private heldBytes: number;

  constructor(ws: WebSocket, options: ResolvedRiversideOptions, stats: RiversideStats, host: SlowConsumerPolicyHost) {
    // V8 lays the fields out in the order they are first assigned: what every delivery reads
    // and writes comes first, so that a broadcast touches as few cache lines of each member's
    // writer as it can, twice a turn (the write, then the end of the turn).
    const internals = ws as unknown as WsInternals;
    this.ws = ws;
    this.socket = internals._socket;
    this.plain = !hasExtensions(internals);
    this.pendingSlot = -1;
    this.corked = false;
    this.flushQueued = false;
    this.drained = false;
    this.corkedBytes = 0;
    this.unsentBefore = 0;
    this.subscriptionsPending = 0;
    this.stats = stats;
    this.options = options;
    this.host = host;
    this.held = null;
    this.heldBytes = 0;
  }

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
    if (this.subscriptionsPending > 0) return this.hold(new OutboundFrame(data, binary), 0);
    if (typeof data === 'string') {
      const bytes = Buffer.byteLength(data);
      if (!this.admit(bytes)) return false;
      if (this.direct()) this.put(frameString(data, bytes, binary), false);
      // Node counts a queued string by its UTF-16 length: as bytes, bufferedAmount stays true.
      else this.viaWs(Buffer.from(data), binary);
    } else {
      if (!this.admit(data.byteLength)) return false;
      if (this.direct()) this.putAll(frameBytes(data, binary), false);
      else this.viaWs(data, binary);
    }
    this.stats.framesOut++;
    return true;
  }

  /** Writes an already-encoded frame; false when not written. */
  write(frame: OutboundFrame): boolean {
    if (!this.admit(frame.byteLength)) return false;
    if (this.direct()) this.putAll(frame.framed, true);
    else this.viaWs(frame.data, frame.binary);
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

  /** The slow-consumer policy: close with 3004, or drop and count. */
  refuse(): void {
    if (this.options.slowConsumer === 'close') this.host.closeFor('slowConsumer');
    else this.stats.droppedMessages++;
  }

  /** @internal End of the turn: what was kept back or corked leaves in one write. */
  flushTurn(): void {
    this.flushQueued = false;
    this.release();
    // Without an extension the socket's own buffer is all that is unsent (see the class doc).
    this.drained = this.plain && this.socket.writableLength === 0;
  }

  /** ws wrote to the socket itself (a pong): what is unsent must be read again. */
  wsWrote(): void {
    this.drained = false;
  }

  /**
   * Writes what this turn kept back or corked now. Called before anything else is written to the
   * socket behind the writer's back (the close frame), so that nothing overtakes it.
   */
  release(): void {
    const slot = this.pendingSlot;
    if (slot >= 0) {
      this.pendingSlot = -1;
      // ws has sent a close frame of its own meanwhile (a protocol error, the peer's close): no
      // data frame may follow it.
      if (this.ws.readyState === 1) this.socket.write(keptForTurn(slot));
    } else if (this.corked) {
      this.uncork();
    }
  }

  /**
   * Open, and not a slow consumer: a socket that had nothing unsent when this turn's writes
   * began is keeping up, even for a message larger than the limit. Otherwise this turn's bytes
   * queue behind the unsent ones, and the sum is held to `maxBackpressure`.
   */
  private admit(bytes: number): boolean {
    const ws = this.ws;
    if (ws.readyState !== 1) return false;
    const kept = this.pendingSlot >= 0;
    if (!kept && !this.corked) {
      // The turn's first write: from here on the socket is written to this turn.
      if (this.drained) {
        this.drained = false;
        this.unsentBefore = 0;
        return true;
      }
      this.unsentBefore = ws.bufferedAmount;
    }
    if (this.unsentBefore === 0) return true;
    // A kept-back frame is not in ws.bufferedAmount yet.
    const unsent = ws.bufferedAmount + (kept ? this.corkedBytes : 0);
    if (unsent + bytes <= this.options.maxBackpressure) return true;
    this.refuse();
    return false;
  }

  /** Framed by hand and written to the socket (see the class doc), else through ws.send(). */
  private direct(): boolean {
    return this.plain;
  }

  /** `keepBack`: a delivery, which may wait for the end of the turn uncorked (see above). */
  private put(chunk: Buffer, keepBack: boolean): void {
    if (!this.corked) {
      if (keepBack && this.pendingSlot < 0 && chunk.length < TURN_FLUSH_BYTES) {
        // The turn's first frame: kept back, in case more follow.
        this.pendingSlot = keepForTurn(chunk);
        this.corkedBytes = chunk.length;
        this.queueFlush();
        return;
      }
      this.cork();
    }
    this.socket.write(chunk);
    this.corkedBytes += chunk.length;
    if (this.corkedBytes >= TURN_FLUSH_BYTES) this.uncork();
  }

  private putAll(chunks: Buffer[], keepBack: boolean): void {
    if (chunks.length === 1) {
      this.put(chunks[0], keepBack);
      return;
    }
    if (!this.corked) this.cork();
    for (const chunk of chunks) {
      this.socket.write(chunk);
      this.corkedBytes += chunk.length;
    }
    if (this.corkedBytes >= TURN_FLUSH_BYTES) this.uncork();
  }

  /** Through ws (an extension): still corked, so the order on the wire is kept. */
  private viaWs(data: Uint8Array, binary: boolean): void {
    if (!this.corked) this.cork();
    this.ws.send(data, binary ? SEND_BINARY : SEND_TEXT);
    this.corkedBytes += data.byteLength;
    if (this.corkedBytes >= TURN_FLUSH_BYTES) this.uncork();
  }

  /** Corks the socket; a frame kept back goes first. */
  private cork(): void {
    this.socket.cork();
    this.corked = true;
    const slot = this.pendingSlot;
    if (slot >= 0) {
      this.pendingSlot = -1;
      this.socket.write(keptForTurn(slot));
    } else {
      this.corkedBytes = 0;
    }
    this.queueFlush();
  }

  private queueFlush(): void {
    if (!this.flushQueued) {
      this.flushQueued = true;
      flushAtEndOfTurn(this);
    }
  }

  private uncork(): void {
    this.corked = false;
    this.socket.uncork();
  }
}

function hasExtensions(ws: WsInternals): boolean {
  for (const _ in ws._extensions) return true;
  return false;
}
