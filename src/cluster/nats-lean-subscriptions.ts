import type { NatsSubscriptionLike } from './nats-transport.options.js';

/**
 * Subscriptions of a few dozen bytes on a nats.js connection, instead of its `Subscription`s.
 *
 * Why: a node holds one subscription per user (and channel) present on it, so what one costs is
 * paid per connection. A nats.js `Subscription` (`SubscriptionImpl` of `@nats-io/nats-core`)
 * costs about 1.1 KiB of heap even with a `callback`: it is also an async iterator and builds
 * three deferred promises (`signal`, `iterClosed`, `closed`), each with its resolve and reject
 * closures, whether or not they are ever used; no option avoids them.
 *
 * The connection's protocol handler needs much less of a subscription: a `sid` it assigns, the
 * `subject` (for SUB, and again for every subscription after a reconnect), `callback(error, msg)`
 * for each MSG, `received` and `max` (auto-unsubscribe), `close()` and `drain()` (when the
 * connection closes or drains). So each topic gets a record with exactly that, registered
 * through the handler's own `subscribe` / `unsubscribe`: the client still sends SUB and UNSUB,
 * restores every subscription after a reconnect, dispatches by sid and reports permission
 * errors, as for its own subscriptions. The subject is derived from the topic when the client
 * asks for it, so the record holds no string of its own.
 *
 * This is internal API of `@nats-io/nats-core` (the same in 3.0.0 to 3.4.0). {@link leanSubscriber}
 * checks its shape and returns null when it differs (another major version, or a connection
 * that is not a nats.js one); the transport then uses the public `subscribe()`.
 */

/** Subscribes to one topic; the subscription calls the handlers given to {@link leanSubscriber}. */
export type LeanSubscribe = (topic: string) => NatsSubscriptionLike;

/** What the protocol handler of a nats.js v3 connection is used for here. */
interface ProtocolHandlerLike {
  subscribe(subscription: object): void;
  unsubscribe(subscription: object, max?: number): void;
  unsub(subscription: object, max?: number): void;
  processMsg(message: unknown, data: Uint8Array): void;
  sendSubscriptions(): void;
  subscriptions: { add(subscription: object): object; get(sid: number): object | undefined; cancel(subscription: object): void };
}

function isProtocolHandler(value: unknown): value is ProtocolHandlerLike {
  const protocol = value as Partial<Record<string, unknown>> | null | undefined;
  if (typeof protocol !== 'object' || protocol === null) return false;
  const subscriptions = protocol.subscriptions as Partial<Record<string, unknown>> | null | undefined;
  return (
    ['subscribe', 'unsubscribe', 'unsub', 'processMsg', 'sendSubscriptions'].every((name) => typeof protocol[name] === 'function') &&
    typeof subscriptions === 'object' &&
    subscriptions !== null &&
    subscriptions.subs instanceof Map &&
    ['add', 'get', 'cancel', 'all'].every((name) => typeof subscriptions[name] === 'function')
  );
}

/**
 * A {@link LeanSubscribe} on `connection`, or null when it is not a nats.js v3 connection whose
 * protocol handler has the known shape.
 * @param subjectOf the NATS subject of a topic (called at SUB time and on each reconnect).
 * @param onMessage called with the topic and payload of every message of a subscription.
 * @param onError called when the client ends a subscription (e.g. a permissions violation).
 */
export function leanSubscriber(
  connection: object,
  subjectOf: (topic: string) => string,
  onMessage: (topic: string, payload: Uint8Array) => void,
  onError: (topic: string, error: Error) => void,
): LeanSubscribe | null {
  const candidate = (connection as { protocol?: unknown }).protocol;
  if (!isProtocolHandler(candidate)) return null;
  const protocol: ProtocolHandlerLike = candidate;
  const isDraining = (connection as { isDraining?: () => boolean }).isDraining;

  /** Four fields; the rest is on the prototype, shared by every subscription of the connection. */
  class LeanSubscription implements NatsSubscriptionLike {
    /** Assigned by the protocol handler. */
    sid = 0;
    /** Messages dispatched (the handler counts them for `max`). */
    received = 0;
    /** Auto-unsubscribe bound; set by the handler's `unsub`. */
    max: number | undefined = undefined;

    constructor(readonly topic: string) {}

    get subject(): string {
      return subjectOf(this.topic);
    }

    callback(error: Error | null, message: { readonly data: Uint8Array }): void {
      if (error) onError(this.topic, error);
      else onMessage(this.topic, message.data);
    }

    /** Sends UNSUB (unless the connection is closed) and forgets the subscription. */
    unsubscribe(): void {
      protocol.unsubscribe(this);
    }

    /** Called by the handler when the subscription ends; nothing is held to release. */
    close(): void {}

    /**
     * Called for each subscription by the connection's `drain()`: sends UNSUB; messages already
     * on their way are still dispatched until the connection closes after its final flush.
     */
    drain(): Promise<void> {
      protocol.unsub(this);
      return Promise.resolve();
    }
  }

  return (topic) => {
    // What the client's own subscribe() refuses.
    if (isDraining?.call(connection)) throw new Error('NatsTransport: the NATS connection is draining');
    // A topic without a subject throws here, before the client holds it (it asks again on reconnect).
    subjectOf(topic);
    const subscription = new LeanSubscription(topic);
    protocol.subscribe(subscription);
    return subscription;
  };
}
