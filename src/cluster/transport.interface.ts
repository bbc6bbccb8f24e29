/**
 * Receives the payloads published on a topic, with the topic (unprefixed, e.g. `user:42`), so
 * that one handler can serve every topic.
 * @publicApi
 */
export type TransportMessageHandler = (payload: Uint8Array, topic: string) => void;

/**
 * Carries deliveries between nodes. `DeliveryService` always serves local sessions itself
 * and uses the transport only for the other nodes: a transport error never blocks local
 * delivery. Implementations: `LocalTransport` (single node, the default); Redis and NATS
 * transports plug in here.
 * @publicApi
 */
export interface RiversideTransport {
  /** Called once at application bootstrap, before any subscribe. */
  connect(): Promise<void>;
  /** Sends a payload to every other node subscribed to the topic. */
  publish(topic: string, payload: Uint8Array): Promise<void>;
  /** Starts receiving a topic; called when the first local session needs it. */
  subscribe(topic: string, handler: TransportMessageHandler): Promise<void>;
  /** Stops receiving a topic; called when the last local session leaves it. */
  unsubscribe(topic: string): Promise<void>;
  /** Called once at shutdown, after every socket is closed. */
  close(): Promise<void>;
  /**
   * Optional: receives everything external services publish under `ext:` (`ext:user:42`...),
   * through one wildcard subscription per node, kept across reconnects. The handler gets the
   * topic without `ext:` (`user:42`, `session:<userId>/<sessionId>`, `channel:room`). A
   * transport without it offers no external namespace.
   */
  subscribeExternal?(handler: TransportMessageHandler): Promise<void>;
  /**
   * Optional: true when `subscribe()` always settles, however slow the broker is: it resolves
   * once the broker holds the subscription, or rejects when the link to it is gone. A new
   * session's @OnInit (and a join's writes) then wait for the subscription as long as it takes,
   * so that nothing other nodes send after it is missed. Otherwise they wait 2 s at most and go
   * on, counting a transport error: a broker that never answers must not hold every session.
   * `IpcTransport` sets it (the primary answers every subscription over an ordered channel, or the
   * channel closes).
   */
  readonly subscriptionsSettle?: boolean;
}

/**
 * DI token of the transport in use, for providers that want to inspect it.
 * @publicApi
 */
export const RIVERSIDE_TRANSPORT = Symbol('RIVERSIDE_TRANSPORT');

export function isTransport(value: unknown): value is RiversideTransport {
  const candidate = value as Partial<RiversideTransport> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    ['connect', 'publish', 'subscribe', 'unsubscribe', 'close'].every(
      (method) => typeof (candidate as Record<string, unknown>)[method] === 'function',
    )
  );
}
