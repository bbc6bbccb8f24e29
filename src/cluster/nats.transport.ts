import { MissingPackageError } from '../errors/missing-package.error.js';
import { isPackageMissing } from '../optional-package.js';
import { BrokerTransport, within } from './broker-transport.js';
import { type LeanSubscribe, leanSubscriber } from './nats-lean-subscriptions.js';
import { natsSubject, topicOfNatsSubject } from './nats-subjects.js';
import {
  type NatsConnectionLike,
  type NatsConnectSettings,
  type NatsSubscriptionLike,
  type NatsTransportOptions,
  resolveNatsTransportOptions,
} from './nats-transport.options.js';
import type { TransportMessageHandler } from './transport.interface.js';

const NATS_PACKAGE = '@nats-io/transport-node';

interface NatsModule {
  connect(options: NatsConnectSettings): Promise<NatsConnectionLike>;
}

/**
 * A `RiversideTransport` on NATS core pub/sub (`@nats-io/transport-node` v3, an optional peer).
 *
 * ```ts
 * RiversideModule.forRoot({ transport: new NatsTransport({ servers: 'nats://nats:4222' }) });
 * // or on a connection of your own, which the transport leaves open at shutdown:
 * RiversideModule.forRoot({ transport: new NatsTransport({ connection: await connect({ servers }) }) });
 * ```
 *
 * Topics map to subjects as {@link natsSubject} describes. External publishers have their own
 * namespace, received through one `<prefix>.ext.>` subscription per node:
 * `nats pub riverside.ext.user.42 '{"hello":1}'` reaches every session of user 42 as a text frame.
 *
 * While the server is unreachable the client reconnects by itself (with `servers`, forever unless
 * `maxReconnectAttempts` says otherwise) and restores every subscription when it is back.
 * Meanwhile `publish()` rejects at once instead of queueing: the client would discard its
 * queue at the next reconnect attempt anyway, so a rejection (logged and counted in
 * `RiversideStats.transportErrors`) is the honest answer. Local delivery is not affected.
 * On a closed connection every call rejects.
 * @publicApi
 */
export class NatsTransport extends BrokerTransport {
  /** The first token(s) of every subject. */
  readonly prefix: string;
  private readonly givenConnection: NatsConnectionLike | null;
  private readonly connectSettings: NatsConnectSettings | null;
  private readonly closeTimeout: number;
  /** Topic -> its NATS subscription (the client restores them after a reconnect). */
  private readonly subscriptions = new Map<string, NatsSubscriptionLike>();
  private externalSubscription: NatsSubscriptionLike | null = null;
  private readonly externalPrefix: string;
  private connection: NatsConnectionLike | null = null;
  /** Subscribes with a record of a few dozen bytes instead of a nats.js Subscription, when the client allows. */
  private subscribeLean: LeanSubscribe | null = null;
  private opening: Promise<void> | null = null;
  /** Counts close() calls, so that a connect() that settles after a close() backs out. */
  private generation = 0;
  private statusFeed: AsyncIterable<unknown> | null = null;
  /** False from a `disconnect` status until the matching `reconnect`. */
  private reachable = false;

  /** @throws InvalidOptionsError naming the offending option. */
  constructor(options: NatsTransportOptions) {
    super('NatsTransport');
    const resolved = resolveNatsTransportOptions(options);
    this.prefix = resolved.prefix;
    this.externalPrefix = `${resolved.prefix}.ext`;
    this.givenConnection = resolved.connection;
    this.connectSettings = resolved.connectSettings;
    this.closeTimeout = resolved.closeTimeout;
  }

  /** The NATS subject of a Riverside topic under this transport's prefix (see {@link natsSubject}). */
  subjectOf(topic: string): string {
    return natsSubject(this.prefix, topic);
  }

  /**
   * With `servers`, loads `@nats-io/transport-node` and connects; with `connection`, starts
   * using it. Rejects when the server cannot be reached (unless `waitOnFirstConnect`), which
   * fails the application's bootstrap.
   * @throws MissingPackageError when `servers` is given and the package is not installed.
   */
  connect(): Promise<void> {
    if (this.connection !== null) return Promise.resolve();
    if (this.opening === null) {
      const opening = this.open(this.generation);
      this.opening = opening;
      void opening.catch(() => undefined).then(() => {
        if (this.opening === opening) this.opening = null;
      });
    }
    return this.opening;
  }

  async publish(topic: string, payload: Uint8Array): Promise<void> {
    const connection = this.ready('publish to', topic);
    if (connection.isClosed()) throw new Error(`NatsTransport: the NATS connection is closed; dropped a message for ${topic}`);
    if (!this.reachable) {
      throw new Error(`NatsTransport: the NATS server is unreachable (reconnecting); dropped a message for ${topic}`);
    }
    // Throws on a payload over the server's max_payload.
    connection.publish(this.subjectOf(topic), payload);
  }

  /** Receives `<prefix>.ext.>`, what external services publish (one subscription, restored by the client). */
  async subscribeExternal(handler: TransportMessageHandler): Promise<void> {
    const connection = this.ready('subscribe to', 'ext:');
    this.externalHandler = handler;
    this.externalSubscription ??= connection.subscribe(`${this.externalPrefix}.>`, { callback: this.onExternalMessage });
    if (this.reachable) await connection.flush();
  }

  /** The client keeps SUBs made while the server is unreachable and sends them on reconnect. */
  protected canSend(): boolean {
    return this.connection !== null && !this.connection.isClosed();
  }

  /**
   * One SUB per topic, then one PING for the chunk: resolves once the server has them all, or at
   * once while it is unreachable (the client sends them when it reconnects).
   */
  protected async sendSubscribe(topics: readonly string[]): Promise<void> {
    const connection = this.connection as NatsConnectionLike;
    for (const topic of topics) {
      if (this.subscriptions.has(topic)) continue;
      const subscription =
        this.subscribeLean?.(topic) ?? connection.subscribe(this.subjectOf(topic), { callback: this.onNodeMessage });
      this.subscriptions.set(topic, subscription);
    }
    if (!this.reachable) return;
    await connection.flush().catch((error: unknown) => {
      if (connection.isClosed()) throw error;
    });
  }

  protected async sendUnsubscribe(topics: readonly string[]): Promise<void> {
    for (const topic of topics) {
      const subscription = this.subscriptions.get(topic);
      // Subscribed again in the same tick: keep it.
      if (subscription === undefined || this.topics.has(topic)) continue;
      this.subscriptions.delete(topic);
      subscription.unsubscribe();
    }
  }

  protected assertOpen(action: string, topic: string): void {
    this.ready(action, topic);
  }

  /** A message of a lean subscription, which knows its topic. */
  private readonly onTopicMessage = (topic: string, payload: Uint8Array): void => {
    const handler = this.handlerOf(topic);
    if (handler !== undefined) this.dispatch(handler, payload, topic);
  };

  private readonly onTopicError = (topic: string, error: Error): void => {
    this.logger.error(`NATS ended the subscription to ${this.subjectOf(topic)}: ${error.message}`);
  };

  /** Every node-to-node subject on public nats.js subscriptions: one callback, the topic read back from the subject. */
  private readonly onNodeMessage = (error: Error | null, message: { readonly subject: string; readonly data: Uint8Array }): void => {
    if (error) {
      this.logger.error(`NATS ended a subscription: ${error.message}`);
      return;
    }
    const topic = topicOfNatsSubject(this.prefix, message.subject);
    const handler = topic === null ? undefined : this.handlerOf(topic);
    if (handler !== undefined) this.dispatch(handler, message.data, topic as string);
  };

  private readonly onExternalMessage = (error: Error | null, message: { readonly subject: string; readonly data: Uint8Array }): void => {
    if (error) {
      this.logger.error(`NATS ended the subscription to ${this.externalPrefix}.>: ${error.message}`);
      return;
    }
    const topic = topicOfNatsSubject(this.externalPrefix, message.subject);
    if (topic !== null && this.externalHandler !== null) this.dispatch(this.externalHandler, message.data, topic);
  };

  /**
   * With `servers`: drains the connection (pending publishes are sent) and closes it, within
   * `closeTimeout` even when the server is down. With `connection`: unsubscribes and leaves it
   * open. Idempotent.
   */
  async close(): Promise<void> {
    const connection = this.connection;
    this.generation++;
    this.connection = null;
    this.opening = null;
    const wasReachable = this.reachable;
    this.reachable = false;
    this.forgetTopics();
    const subscriptions = [...this.subscriptions.values()];
    if (this.externalSubscription !== null) subscriptions.push(this.externalSubscription);
    this.subscriptions.clear();
    this.externalSubscription = null;
    this.subscribeLean = null;
    (this.statusFeed as { stop?: () => void } | null)?.stop?.();
    this.statusFeed = null;
    if (connection === null || connection.isClosed()) return;
    if (this.givenConnection !== null) {
      for (const subscription of subscriptions) {
        try {
          subscription.unsubscribe();
        } catch {
          // The owner is draining or closing the connection: its subscriptions end with it.
        }
      }
      return;
    }
    // drain() waits for a server reply, which never comes while the server is down.
    if (wasReachable) await within(this.closeTimeout, connection.drain().catch(() => undefined));
    if (!connection.isClosed()) await within(this.closeTimeout, connection.close().catch(() => undefined));
  }

  private async open(generation: number): Promise<void> {
    const connection = await this.obtainConnection();
    if (generation !== this.generation) {
      if (this.givenConnection === null) await within(this.closeTimeout, connection.close().catch(() => undefined));
      throw new Error('NatsTransport: closed while connecting');
    }
    this.start(connection);
  }

  private async obtainConnection(): Promise<NatsConnectionLike> {
    if (this.givenConnection !== null) {
      if (this.givenConnection.isClosed()) throw new Error('NatsTransport: the given NATS connection is closed');
      return this.givenConnection;
    }
    const nats = await loadNats();
    const settings = this.connectSettings!;
    try {
      return await nats.connect(settings);
    } catch (error) {
      throw new Error(`NatsTransport could not connect to ${String(settings.servers)}: ${(error as Error)?.message ?? error}`, {
        cause: error,
      });
    }
  }

  private start(connection: NatsConnectionLike): void {
    this.connection = connection;
    this.subscribeLean = leanSubscriber(connection, (topic) => this.subjectOf(topic), this.onTopicMessage, this.onTopicError);
    this.reachable = !connection.isClosed();
    const feed = connection.status();
    this.statusFeed = feed;
    void (async () => {
      for await (const status of feed) {
        if (this.statusFeed !== feed) return;
        this.onStatus(status);
      }
    })().catch(() => undefined);
  }

  private onStatus(status: { readonly type: string; readonly server?: string; readonly error?: unknown }): void {
    switch (status.type) {
      case 'disconnect':
        this.reachable = false;
        this.logger.warn(
          `Lost the NATS server ${status.server ?? ''}; reconnecting. Cluster publishes fail until it is back.`,
        );
        return;
      case 'reconnect':
        this.reachable = true;
        this.logger.log(`Reconnected to the NATS server ${status.server ?? ''}; ${this.subscriptions.size} subscription(s) restored.`);
        // Topics whose subscribe() came while the connection was being replaced.
        if (this.subscriptions.size < this.topics.size) {
          this.resubscribeAll().catch((error: Error) => this.logger.error(`Resubscribing failed: ${error.message}`));
        }
        return;
      case 'close':
        this.reachable = false;
        return;
      case 'error':
        // Asynchronous server errors, e.g. a permissions violation on publish.
        this.logger.error(`NATS server error: ${(status.error as Error)?.message ?? String(status.error)}`);
        return;
    }
  }

  private ready(action: string, topic: string): NatsConnectionLike {
    if (this.connection === null) throw new Error(`NatsTransport: cannot ${action} ${topic} before connect() or after close()`);
    return this.connection;
  }
}

async function loadNats(): Promise<NatsModule> {
  try {
    return await import('@nats-io/transport-node');
  } catch (error) {
    // An ESM-only package: import(), not require(); the same rule for what counts as missing.
    if (isPackageMissing(error, NATS_PACKAGE)) throw new MissingPackageError(NATS_PACKAGE, 'NatsTransport');
    throw error;
  }
}
