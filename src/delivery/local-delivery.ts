import { Injectable } from '@nestjs/common';
import type { Codec } from '../codec/codec.interface.js';
import { HandlerExplorer } from '../handler/handler.explorer.js';
import type { DeliveryTarget } from './delivery-target.js';
import type { EncodedMessage } from './encoded-message.js';
import type { Connection } from '../connection/connection.js';
import type { OutboundFrame } from './outbound-frame.js';
import { isLoneConnection, type ResolvedTarget, SessionRegistry } from './session-registry.js';

/**
 * Delivery to the sessions of this node (Riverside's LocalDelivery). DeliveryService calls it
 * for local sessions; ClusterRelay for what other nodes send.
 */
@Injectable()
export class LocalDelivery {
  constructor(
    private readonly registry: SessionRegistry,
    private readonly explorer: HandlerExplorer,
  ) {}

  /** Writes the message to every local session behind the target; returns how many sockets. */
  deliver(target: DeliveryTarget, message: EncodedMessage): number {
    const connections = this.registry.resolve(target);
    if (isLoneConnection(connections)) return connections.deliver(message.frameFor(connections.handler.codec)) ? 1 : 0;
    if (connections.size === 0) return 0;
    const sole = this.explorer.soleCodec;
    if (sole !== null) return writeAll(connections, message.frameFor(sole));
    // Encode with every codec in use before the first write: an EncodeError must leave nothing
    // half-delivered.
    let previous: Codec | null = null;
    for (const connection of connections.keys()) {
      const codec = connection.handler.codec;
      if (codec !== previous) {
        message.frameFor(codec);
        previous = codec;
      }
    }
    let written = 0;
    for (const connection of connections.keys()) {
      if (connection.deliver(message.frameFor(connection.handler.codec))) written++;
    }
    return written;
  }

  /** Writes an already-encoded frame (from another node) to every local session behind the target. */
  deliverFrame(target: DeliveryTarget, frame: OutboundFrame): number {
    const connections = this.registry.resolve(target);
    if (isLoneConnection(connections)) return connections.deliver(frame) ? 1 : 0;
    return writeAll(connections, frame);
  }

  info(target: DeliveryTarget, info: unknown): number {
    let reached = 0;
    // A copy: an @OnInfo that runs now may join or leave and change the set being iterated.
    for (const connection of copyOf(this.registry.resolve(target))) {
      if (connection.info(info)) reached++;
    }
    return reached;
  }

  close(target: DeliveryTarget, code: number, reason: string): number {
    let closed = 0;
    for (const connection of copyOf(this.registry.resolve(target))) {
      if (connection.isOpen) closed++;
      connection.close(code, reason);
    }
    return closed;
  }
}

/** The connections as a list of their own, safe to iterate while callbacks join, leave or close. */
function copyOf(found: ResolvedTarget): Connection[] {
  return isLoneConnection(found) ? [found] : [...found.keys()];
}

/** Writes one frame to every connection; returns how many took it. */
function writeAll(connections: ReadonlySet<Connection> | ReadonlyMap<Connection, unknown>, frame: OutboundFrame): number {
  let written = 0;
  for (const connection of connections.keys()) {
    if (connection.deliver(frame)) written++;
  }
  return written;
}
