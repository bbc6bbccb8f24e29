import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import type { ResolvedRiversideOptions } from '../module/riverside-options.resolver.js';
import { RIVERSIDE_RESOLVED_OPTIONS } from '../riverside.constants.js';
import { RiversideStats } from '../stats/riverside-stats.js';
import { LocalTransport } from '../transport/local.transport.js';
import { topicOf } from '../transport/topics.js';
import type { RiversideTransport } from '../transport/transport.interface.js';
import { decodeWireMessage, encodeWireMessage, type WireMessage } from '../transport/wire-message.js';
import type { DeliveryTarget } from './delivery-target.js';
import { LocalDelivery } from './local-delivery.js';
import { OutboundFrame } from './outbound-frame.js';
import { SessionRegistry, type TopicListener } from './session-registry.js';

type OutgoingWireMessage = DistributeOmit<Exclude<WireMessage, { kind: 'external' }>, 'origin'>;
type DistributeOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * Carries deliveries to and from other nodes through the transport. The node subscribes only
 * to the topics it has local sessions for (a user, a session, a channel), and drops the
 * messages it published itself: its own sessions were already served locally.
 *
 * With the default LocalTransport it is disabled and costs nothing.
 */
@Injectable()
export class ClusterRelay implements TopicListener {
  /** Identifies this node's messages on the transport. */
  readonly nodeId = randomBytes(8).toString('hex');
  readonly enabled: boolean;
  private readonly transport: RiversideTransport;
  private readonly logger = new Logger('Riverside');

  constructor(
    @Inject(RIVERSIDE_RESOLVED_OPTIONS) options: ResolvedRiversideOptions,
    registry: SessionRegistry,
    private readonly local: LocalDelivery,
    private readonly stats: RiversideStats,
  ) {
    this.transport = options.transport;
    this.enabled = !(options.transport instanceof LocalTransport);
    if (this.enabled) registry.setTopicListener(this);
  }

  /** Sends to the other nodes; failures are logged and counted, never thrown. */
  publish(target: DeliveryTarget, message: OutgoingWireMessage): void {
    const topic = topicOf(target);
    let payload: Buffer;
    try {
      payload = encodeWireMessage({ ...message, origin: this.nodeId } as Exclude<WireMessage, { kind: 'external' }>);
    } catch (error) {
      this.transportFailed(`encoding a ${message.kind} for ${topic}`, error);
      return;
    }
    this.transport.publish(topic, payload).catch((error: unknown) => this.transportFailed(`publishing to ${topic}`, error));
  }

  topicOpened(topic: string, target: DeliveryTarget): void {
    this.transport
      .subscribe(topic, (payload) => this.receive(target, payload))
      .catch((error: unknown) => this.transportFailed(`subscribing to ${topic}`, error));
  }

  topicClosed(topic: string): void {
    this.transport.unsubscribe(topic).catch((error: unknown) => this.transportFailed(`unsubscribing from ${topic}`, error));
  }

  private receive(target: DeliveryTarget, payload: Uint8Array): void {
    const message = decodeWireMessage(payload);
    if (message === null) {
      this.transportFailed(`reading a message for ${topicOf(target)}`, new Error('unreadable Riverside wire message'));
      return;
    }
    if (message.kind !== 'external' && message.origin === this.nodeId) return;
    switch (message.kind) {
      case 'deliver':
      case 'external':
        this.local.deliverFrame(target, new OutboundFrame(message.data, message.binary));
        return;
      case 'info':
        this.local.info(target, message.info);
        return;
      case 'close':
        this.local.close(target, message.code, message.reason);
        return;
    }
  }

  private transportFailed(what: string, error: unknown): void {
    this.stats.transportErrors++;
    this.logger.error(`Cluster transport failed ${what}: ${error instanceof Error ? error.message : String(error)}`);
  }
}
