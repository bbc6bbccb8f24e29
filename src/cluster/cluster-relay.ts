import { Inject, Injectable, Logger } from '@nestjs/common';
import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import type { DeliveryTarget } from '../delivery/delivery-target.js';
import { EncodedMessage } from '../delivery/encoded-message.js';
import { LocalDelivery } from '../delivery/local-delivery.js';
import { OutboundFrame } from '../delivery/outbound-frame.js';
import { SessionRegistry, type TopicListener } from '../delivery/session-registry.js';
import { Frame } from '../codec/frame.js';
import { safeRemoteClose } from '../connection/close-codes.js';
import type { ResolvedRiversideOptions } from '../module/riverside-options.resolver.js';
import { RIVERSIDE_RESOLVED_OPTIONS } from '../riverside.constants.js';
import { RiversideStats } from '../stats/riverside-stats.js';
import { LocalTransport } from './local.transport.js';
import { BRIDGE_TOPIC, targetOfTopic, topicOf, userTopic } from './topics.js';
import type { RiversideTransport } from './transport.interface.js';
import { decodeWireMessage, encodeWireMessage, isFromOrigin, type WireMessage } from './wire-message.js';
import { LogThrottle } from './log-throttle.js';
import { TransportFailures } from './transport-failures.js';

/**
 * How long a new session (before @OnInit) or a join (its later writes) waits for the broker to
 * confirm a subscription before going on anyway; a longer wait is counted as a transport error.
 * Over a transport whose subscriptions always settle (`subscriptionsSettle`), they wait on, and
 * past this a warning only says so.
 */
const SUBSCRIBE_WAIT_MS = 2000;

function isId(value: unknown): value is string | number {
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
}

type Outgoing = DistributeOmit<WireMessage, 'origin' | 'session'>;
type DistributeOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * Carries deliveries to and from other nodes through the transport. The node subscribes only
 * to the users and channels it has local sessions for (a session target rides on its user's
 * topic), and drops the messages it published itself: its own sessions were already served
 * locally. It also receives the external namespace and, with `bridge`, the bridge topic.
 *
 * With the default LocalTransport it is disabled and costs nothing.
 */
@Injectable()
export class ClusterRelay implements TopicListener {
  /** Identifies this node's messages on the transport. */
  readonly nodeId = randomBytes(8).toString('hex');
  /** nodeId's bytes, to recognize this node's own messages without decoding them. */
  private readonly nodeIdBytes = Buffer.from(this.nodeId, 'latin1');
  readonly enabled: boolean;
  private readonly transport: RiversideTransport;
  private readonly logger = new Logger('Riverside');
  private failures: TransportFailures | undefined;
  private readonly invalidCloseLog = new LogThrottle();
  private readonly slowSubscriptionLog = new LogThrottle();
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

  /**
   * Called once the transport is connected: listens on the external namespace (when the
   * transport has one) and on the bridge topic if asked to.
   */
  start(): void {
    if (!this.enabled) return;
    this.transport
      .subscribeExternal?.(this.onExternal)
      .catch((error: unknown) => this.transportFailed('subscribing to the external namespace (ext:)', error));
    if (!this.options.bridge) return;
    this.transport
      .subscribe(BRIDGE_TOPIC, (payload) => this.receiveEnvelope(payload))
      .catch((error: unknown) => this.transportFailed(`subscribing to ${BRIDGE_TOPIC}`, error));
  }

  /**
   * The bytes that carry a delivery to the other nodes: a Frame as it is, anything else as data
   * that each node encodes with its sessions' codecs. Throws an EncodeError, before anything is
   * written anywhere, when the message cannot cross (see wire-message.ts).
   */
  wireFor(target: DeliveryTarget, message: unknown): Buffer {
    const origin = this.nodeId;
    const session = sessionOf(target);
    return encodeWireMessage(
      message instanceof Frame
        ? { kind: 'frame', origin, session, binary: message.type === 'binary', data: toBuffer(message.data) }
        : { kind: 'deliver', origin, session, message },
    );
  }

  /** Bytes for an info or a close; throws an EncodeError when an info cannot cross. */
  encode(target: DeliveryTarget, message: Outgoing): Buffer {
    return encodeWireMessage({ ...message, origin: this.nodeId, session: sessionOf(target) } as WireMessage);
  }

  /** Sends to the other nodes; failures are logged and counted, never thrown. */
  send(target: DeliveryTarget, payload: Buffer): void {
    const topic = topicOf(target);
    this.transport.publish(topic, payload).catch((error: unknown) => this.transportFailed(`publishing to ${topic}`, error));
  }

  topicOpened(topic: string): void {
    const confirmed = this.transport
      .subscribe(topic, this.onNodeMessage)
      .catch((error: unknown) => this.transportFailed(`subscribing to ${topic}`, error));
    const settles = this.transport.subscriptionsSettle === true;
    // Bounded once per topic: a broker that never confirms delays writes by SUBSCRIBE_WAIT_MS at
    // most. One whose subscriptions always settle is waited for: going on would let the session
    // miss what other nodes send before the broker holds the subscription (SPEC 14.4).
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (settles) return this.subscriptionSlow(topic);
        this.transportFailed(`waiting for the subscription to ${topic}`, new Error(`not confirmed within ${SUBSCRIBE_WAIT_MS} ms`));
        resolve();
      }, SUBSCRIBE_WAIT_MS);
      timer.unref();
    });
    const pending: Promise<void> = Promise.race([confirmed, bound]).finally(() => {
      clearTimeout(timer);
      if (this.subscribing.get(topic) === pending) this.subscribing.delete(topic);
    });
    this.subscribing.set(topic, pending);
  }

  /**
   * Settles once the user's topic is subscribed (or failed to be), so that @OnInit, and with it
   * everything the client is told, comes after the node can receive deliveries for it from other
   * nodes. Null when nothing is pending. Bounded like subscriptionPending().
   */
  subscribedFor(userId: string): Promise<void> | null {
    return this.subscriptionPending(userTopic(userId));
  }

  /**
   * Settles once the broker has confirmed the topic's subscription, or failed it, or after
   * SUBSCRIBE_WAIT_MS (counted as a transport error) unless the transport's subscriptions always
   * settle: a join's writes wait on it. Null when nothing is pending.
   */
  subscriptionPending(topic: string): Promise<void> | null {
    return this.subscribing.get(topic) ?? null;
  }

  topicClosed(topic: string): void {
    this.transport.unsubscribe(topic).catch((error: unknown) => this.transportFailed(`unsubscribing from ${topic}`, error));
  }

  /** Every node-to-node topic's messages: one function, no closure per topic. */
  private readonly onNodeMessage = (payload: Uint8Array, topic: string): void => {
    // Its own sessions were served when it published: dropped before anything is decoded.
    if (isFromOrigin(payload, this.nodeIdBytes)) return;
    const message = decodeWireMessage(payload);
    if (message.kind === 'rejected') {
      this.stats.rejectedClusterMessages++;
      this.transportFailed(`reading a message on ${topic} (rejected)`, new Error(message.reason));
      return;
    }
    if (message.origin === this.nodeId) return;
    let target = targetOfTopic(topic);
    if (target === null) return;
    if (message.session !== null && target.user != null) target = { session: [target.user, message.session] };
    try {
      switch (message.kind) {
        case 'frame':
          this.local.deliverFrame(target, new OutboundFrame(message.data, message.binary));
          return;
        case 'deliver':
          this.local.deliver(target, new EncodedMessage(message.message));
          return;
        case 'info':
          this.local.info(target, message.info);
          return;
        case 'close':
          this.closeFromRemote(target, message.code, message.reason);
          return;
      }
    } catch (error) {
      // An EncodeError of a codec here: nothing was written on this node (LocalDelivery encodes first).
      this.transportFailed(`delivering a message from ${topic}`, error);
    }
  };

  /**
   * What external services publish under `ext:`: bytes, written as they are (a text frame when
   * they are valid UTF-8, else a binary frame). Never a close or an info.
   */
  private readonly onExternal = (payload: Uint8Array, topic: string): void => {
    const target = targetOfTopic(topic);
    if (target === null) return;
    const data = toBuffer(payload);
    this.local.deliverFrame(target, new OutboundFrame(data, !isUtf8(data)));
  };

  /**
   * A close from another node: it was never validated here, so an invalid code becomes 1000 and
   * an over-long reason is cut (UTF-8-safe) before it reaches the connections; counted every
   * time, logged at most once per LOG_INTERVAL_MS.
   */
  private closeFromRemote(target: DeliveryTarget, code: number, reason: string): void {
    const safe = safeRemoteClose(code, reason);
    if (safe.problem !== null) {
      this.stats.invalidRemoteCloses++;
      if (this.invalidCloseLog.take() !== null) {
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

  /**
   * A subscription the transport will confirm (or fail) but has not within SUBSCRIBE_WAIT_MS: the
   * broker, or the cluster primary for IpcTransport, is busy or starved of CPU (a reconnect storm
   * on few cores). Nothing failed and nothing is lost; the session waits on. Logged at most once
   * per LOG_INTERVAL_MS.
   */
  private subscriptionSlow(topic: string): void {
    const heldBack = this.slowSubscriptionLog.take();
    if (heldBack === null) return;
    const more = heldBack > 0 ? ` (${heldBack} more since the last report)` : '';
    this.logger.warn(
      `Cluster transport slow: the subscription to ${topic} is not confirmed after ${SUBSCRIBE_WAIT_MS} ms${more}; ` +
        'the session waits for it before @OnInit. Is the broker (for IpcTransport, the cluster primary) short of CPU?',
    );
  }

  /** Counted every time; logged at most once per interval (see TransportFailures). */
  private transportFailed(what: string, error: unknown): void {
    // Made on first use: the stats and logger fields are set by then, whatever the field order.
    (this.failures ??= new TransportFailures(this.stats, this.logger, 'Cluster transport failed')).report(what, error);
  }

}

function sessionOf(target: DeliveryTarget): string | null {
  return Array.isArray(target.session) ? String(target.session[1]) : null;
}

function toBuffer(data: string | Uint8Array): Buffer {
  if (typeof data === 'string') return Buffer.from(data);
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
