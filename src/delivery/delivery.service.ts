import { Injectable } from '@nestjs/common';
import type { Codec } from '../codec/codec.interface.js';
import { Frame } from '../codec/frame.js';
import { assertApplicationCloseCode } from '../connection/close-codes.js';
import type { Connection } from '../connection/connection.js';
import { connectionOf, type Session } from '../connection/session.js';
import { EncodeError } from '../errors/encode.error.js';
import type { ChannelMember, DeliveryTarget, RiversideId } from './delivery-target.js';
import { OutboundFrame } from './outbound-frame.js';
import { SessionRegistry } from './session-registry.js';

/**
 * Delivers to a user, a session or a channel from anywhere in the app: controllers,
 * services, queue consumers. Inject it like any provider.
 *
 * ```ts
 * delivery.deliver({ user: 42 }, { type: 'notification', text: 'hi' });
 * delivery.deliver({ channel: 'room:1' }, message);   // encoded once, framed once
 * ```
 * @publicApi
 */
@Injectable()
export class DeliveryService {
  constructor(private readonly registry: SessionRegistry) {}

  /**
   * Sends a message to every session behind the target, encoded once per codec in use and
   * framed once. Returns how many local sockets it was written to (0, never a throw, when
   * nobody is there). Throws an `EncodeError`, before writing anything, when the codec cannot
   * encode the message; a `Frame` bypasses the codec.
   */
  deliver(target: DeliveryTarget, message: unknown): number {
    const connections = this.registry.resolve(target);
    if (connections.size === 0) return 0;
    let frame: OutboundFrame;
    let firstCodec: Codec | null = null;
    let otherFrames: Map<Codec, OutboundFrame> | null = null;
    if (message instanceof Frame) {
      frame = new OutboundFrame(message.data, message.type === 'binary');
    } else {
      // Encode with every codec in use before the first write, so that an EncodeError leaves
      // nothing half-delivered. Nearly every app has one codec: compare, do not hash, per recipient.
      let first: Connection | null = null;
      for (const connection of connections.keys()) {
        const codec = connection.handler.codec;
        if (first === null) {
          first = connection;
          firstCodec = codec;
        } else if (codec !== firstCodec && !otherFrames?.has(codec)) {
          (otherFrames ??= new Map()).set(codec, encode(connection, message));
        }
      }
      frame = encode(first as Connection, message);
    }
    let written = 0;
    for (const connection of connections.keys()) {
      const codec = connection.handler.codec;
      const own = otherFrames === null || codec === firstCodec ? frame : (otherFrames.get(codec) as OutboundFrame);
      if (connection.deliver(own)) written++;
    }
    return written;
  }

  /** Hands `info` to the `@OnInfo` of every session behind the target; returns how many. */
  info(target: DeliveryTarget, info: unknown): number {
    let reached = 0;
    for (const connection of [...this.registry.resolve(target).keys()]) {
      if (connection.info(info)) reached++;
    }
    return reached;
  }

  /** Closes every session behind the target (1000 or 3000-4999); their terminate reason is 'stop'. */
  close(target: DeliveryTarget, code = 1000, reason = ''): number {
    assertApplicationCloseCode(code, reason);
    let closed = 0;
    for (const connection of [...this.registry.resolve(target).keys()]) {
      if (connection.isOpen) closed++;
      connection.close(code, reason);
    }
    return closed;
  }

  /** Joins a session to a channel; a second join only updates `meta`. True when newly joined. */
  join(session: Session, channel: RiversideId, meta?: unknown): boolean {
    return connectionOf(session).join(channel, meta);
  }

  /** Leaves one channel, or every channel when none is named; returns how many were left. */
  leave(session: Session, channel?: RiversideId): number {
    return session.leave(channel);
  }

  /** Leaves every channel; returns how many. */
  leaveAll(session: Session): number {
    return connectionOf(session).leaveAll();
  }

  isMember(session: Session, channel: RiversideId): boolean {
    return this.registry.isMember(connectionOf(session) as Connection, String(channel));
  }

  /** The sessions in a channel on this node, with the meta they joined with. */
  members(channel: RiversideId): ChannelMember[] {
    return this.registry.members(String(channel));
  }

  channelsOf(session: Session): string[] {
    return connectionOf(session).channels();
  }
}

function encode(connection: Connection, message: unknown): OutboundFrame {
  const { codec, codecName } = connection.handler;
  let data: string | Uint8Array;
  try {
    data = codec.encode(message);
  } catch (error) {
    throw new EncodeError(codecName, error);
  }
  return new OutboundFrame(data, codec.frameType === 'binary');
}
