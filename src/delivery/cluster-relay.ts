import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { safeRemoteClose } from '../connection/close-codes.js';
import type { ResolvedRiversideOptions } from '../module/riverside-options.resolver.js';
import { RIVERSIDE_RESOLVED_OPTIONS } from '../riverside.constants.js';
import { RiversideStats } from '../stats/riverside-stats.js';
import { LocalTransport } from '../transport/local.transport.js';
import { BRIDGE_TOPIC, sessionTopic, topicOf, userTopic } from '../transport/topics.js';
import type { RiversideTransport } from '../transport/transport.interface.js';
import { decodeWireMessage, encodeWireMessage, type WireMessage } from '../transport/wire-message.js';
import type { DeliveryTarget } from './delivery-target.js';
import { EncodedMessage } from './encoded-message.js';
import { LocalDelivery } from './local-delivery.js';
import { OutboundFrame } from './outbound-frame.js';
import { SessionRegistry, type TopicListener } from './session-registry.js';

/** Transport failures are logged at most this often; all of them are counted. */
const LOG_INTERVAL_MS = 5000;
/** How long a new session waits for its subscriptions before @OnInit runs anyway. */
const SUBSCRIBE_WAIT_MS = 2000;

function isId(value: unknown): value is string | number {
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
}

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
  private lastLoggedAt = -Infinity;
  private unlogged = 0;
  private lastWarnedAt = -Infinity;
  /** Subscriptions sent to the broker and not yet confirmed, by topic. */
  private readonly subscribing = new Map<string, Promise<void>>();

  constructor(
    @Inject(RIVERSIDE_RESOLVED_OPTIONS) private readonly options: ResolvedRiversideOptions,
    registry: SessionRegistry,
    private readonly local: LocalDelivery,
    private readonly stats: RiversideStats,
  ) {
    this.transport = options.transport;
    this.enabled = !(options.transport instanceof LocalTransport);
    if (this.enabled) registry.setTopicListener(this);
  }

  /** Called once the transport is connected: starts listening on the bridge topic if asked to. */
  start(): void {
    if (!this.enabled || !this.options.bridge) return;
    this.transport
      .subscribe(BRIDGE_TOPIC, (payload) => this.receiveEnvelope(payload))
      .catch((error: unknown) => this.transportFailed(`subscribing to ${BRIDGE_TOPIC}`, error));
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
    const subscribed = this.transport
      .subscribe(topic, (payload) => this.receive(target, payload))
      .catch((error: unknown) => this.transportFailed(`subscribing to ${topic}`, error))
      .finally(() => {
        if (this.subscribing.get(topic) === subscribed) this.subscribing.delete(topic);
      });
    this.subscribing.set(topic, subscribed);
  }

  /**
   * Settles once the session's user and session topics are subscribed (or failed to be), so
   * that @OnInit, and with it everything the client is told, comes after the node can receive
   * deliveries for it from other nodes. Null when nothing is pending. Bounded: a broker that
   * never answers delays a session by SUBSCRIBE_WAIT_MS at most.
   */
  subscribedFor(userId: string, sessionId: string): Promise<void> | null {
    const pending = [this.subscribing.get(userTopic(userId)), this.subscribing.get(sessionTopic(userId, sessionId))].filter(
      (promise): promise is Promise<void> => promise !== undefined,
    );
    if (pending.length === 0) return null;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, SUBSCRIBE_WAIT_MS);
      timer.unref();
    });
    return Promise.race([Promise.all(pending).then(() => undefined), bound]).finally(() => clearTimeout(timer));
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
        this.closeFromRemote(target, message.code, message.reason);
        return;
    }
  }

  /**
   * A close from another node or an external publisher: it was never validated here, so an
   * invalid code becomes 1000 and an over-long reason is cut (UTF-8-safe) before it reaches the
   * connections; counted every time, logged at most once per LOG_INTERVAL_MS.
   */
  private closeFromRemote(target: DeliveryTarget, code: number, reason: string): void {
    const safe = safeRemoteClose(code, reason);
    if (safe.problem !== null) {
      this.stats.invalidRemoteCloses++;
      const now = Date.now();
      if (now - this.lastWarnedAt >= LOG_INTERVAL_MS) {
        this.lastWarnedAt = now;
        this.logger.warn(`A close for ${topicOf(target)} from the cluster transport was fixed: ${safe.problem}`);
      }
    }
    this.local.close(target, safe.code, safe.reason);
  }

  /** Seed 004's envelope: `data` to every local session of each recipient, encoded once. */
  private receiveEnvelope(payload: Uint8Array): void {
    let envelope: { recipients?: unknown; data?: unknown };
    try {
      envelope = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString());
    } catch {
      envelope = {};
    }
    const recipients = envelope?.recipients;
    if (!Array.isArray(recipients) || !('data' in envelope) || !recipients.every(isId)) {
      this.transportFailed(`reading a ${BRIDGE_TOPIC} envelope`, new Error('expected {"recipients": [userId, ...], "data": ...}'));
      return;
    }
    const message = new EncodedMessage(envelope.data);
    try {
      for (const userId of recipients) this.local.deliver({ user: userId }, message);
    } catch (error) {
      this.transportFailed(`delivering a ${BRIDGE_TOPIC} envelope`, error);
    }
  }

  /** Counted every time; logged at most once per LOG_INTERVAL_MS, so an outage cannot flood the log. */
  private transportFailed(what: string, error: unknown): void {
    this.stats.transportErrors++;
    const now = Date.now();
    if (now - this.lastLoggedAt < LOG_INTERVAL_MS) {
      this.unlogged++;
      return;
    }
    const more = this.unlogged > 0 ? ` (and ${this.unlogged} more failure(s) since the last report)` : '';
    this.lastLoggedAt = now;
    this.unlogged = 0;
    this.logger.error(`Cluster transport failed ${what}: ${error instanceof Error ? error.message : String(error)}${more}`);
  }
}
