import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import { MissingPackageError } from '../errors/missing-package.error.js';
import { isPackageMissing } from '../optional-package.js';
import { describeValue } from '../riverside.messages.js';
import { BrokerTransport, within } from './broker-transport.js';
import { type LeanSubscribe, leanSubscriber } from './nats-lean-subscriptions.js';
import { isValidNatsPrefix, natsSubject, topicOfNatsSubject } from './nats-subjects.js';
import type { TransportMessageHandler } from './transport.interface.js';

const NATS_PACKAGE = '@nats-io/transport-node';

/**
 * What `NatsTransport` uses of a `NatsConnection` from `@nats-io/transport-node` v3 (the value
 * `connect()` resolves to). Declared here so that the package stays an optional peer.
 * @publicApi
 */
export interface NatsConnectionLike {
  publish(subject: string, payload?: Uint8Array | string): void;
  subscribe(
    subject: string,
    options?: { callback?: (error: Error | null, message: { readonly subject: string; readonly data: Uint8Array }) => void },
  ): NatsSubscriptionLike;
  flush(): Promise<void>;
  drain(): Promise<void>;
  close(): Promise<void>;
  isClosed(): boolean;
  status(): AsyncIterable<{ readonly type: string; readonly server?: string; readonly error?: unknown }>;
}

/**
 * What `NatsTransport` uses of a NATS `Subscription`.
 * @publicApi
 */
export interface NatsSubscriptionLike {
  unsubscribe(): void;
}

/**
 * The `connect()` options of `@nats-io/transport-node` that `NatsTransport` passes through when it
 * opens the connection itself. Anything not listed here: connect yourself and pass `connection`.
 * @publicApi
 */
export interface NatsConnectOptions {
  /** Client name shown by the server's monitoring. */
  name?: string;
  user?: string;
  pass?: string;
  token?: string;
  /** An `Authenticator` of `@nats-io/transport-node`: `nkeyAuthenticator()`, `credsAuthenticator()`... */
  authenticator?: NatsAuthenticator | NatsAuthenticator[];
  /** TLS options (PEM strings or file paths); an empty object requires TLS. */
  tls?: {
    ca?: string;
    caFile?: string;
    cert?: string;
    certFile?: string;
    key?: string;
    keyFile?: string;
    handshakeFirst?: boolean;
    rejectUnauthorized?: boolean;
  } | null;
  /** Milliseconds to wait for the server's handshake. @default 20000 */
  timeout?: number;
  /**
   * Reconnect attempts per server before the client gives up and closes for good.
   * @default -1 (never give up; the client's own default is 10)
   */
  maxReconnectAttempts?: number;
  /**
   * Milliseconds between reconnect attempts: a node is back at most about this long (plus
   * `reconnectJitter`) after the server is.
   * @default 250 (the client's own default is 2000)
   */
  reconnectTimeWait?: number;
  /** Upper bound of a random delay added to `reconnectTimeWait`. @default 100 */
  reconnectJitter?: number;
  /** Milliseconds between client pings. @default 120000 */
  pingInterval?: number;
  /** Unanswered pings before the connection counts as stale and reconnects. @default 2 */
  maxPingOut?: number;
  /** Keep the order of `servers` instead of shuffling it. @default false */
  noRandomize?: boolean;
  /**
   * Do not send this node's own publications back to it (the relay would drop them anyway).
   * @default true (the client's own default is false)
   */
  noEcho?: boolean;
  /** Keep retrying the first connection (the bootstrap waits for it) instead of failing at once. @default false */
  waitOnFirstConnect?: boolean;
  /** Print the protocol exchange. @default false */
  debug?: boolean;
}

/**
 * The credentials callback of a NATS client (its `Authenticator` type).
 * @publicApi
 */
export type NatsAuthenticator = (
  nonce?: string,
) =>
  | void
  | { auth_token: string }
  | { user: string; pass?: string }
  | { nkey: string; sig: string }
  | { jwt: string; nkey?: string; sig?: string };

interface NatsTransportCommonOptions {
  /**
   * First token(s) of every subject, so that several deployments can share a NATS server:
   * one or more `.`-separated tokens without `*`, `>` or whitespace.
   * @default 'riverside'
   */
  prefix?: string;
}

/**
 * `NatsTransport` on a connection you made and own: it is not closed by the transport.
 * @publicApi
 */
export interface NatsTransportConnectionOptions extends NatsTransportCommonOptions {
  /** A connected `NatsConnection` from `connect()` of `@nats-io/transport-node` v3. */
  connection: NatsConnectionLike;
}

/**
 * `NatsTransport` opening its own connection at bootstrap and closing it at shutdown.
 * @publicApi
 */
export interface NatsTransportServersOptions extends NatsTransportCommonOptions, NatsConnectOptions {
  /** One `host:port` / `nats://host:port` or several (a cluster). */
  servers: string | string[];
  /**
   * Upper bound in milliseconds of `close()`: draining the connection, then closing it.
   * @default 2000
   */
  closeTimeout?: number;
}

/**
 * Options of {@link NatsTransport}: either `connection` or `servers`.
 * @publicApi
 */
export type NatsTransportOptions = NatsTransportConnectionOptions | NatsTransportServersOptions;

interface NatsModule {
  connect(options: NatsConnectOptions & { servers: string | string[] }): Promise<NatsConnectionLike>;
}

const CONNECTION_KEYS = ['prefix', 'connection'];
const CONNECTION_METHODS = ['publish', 'subscribe', 'flush', 'drain', 'close', 'isClosed', 'status'] as const;

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
  private readonly connectOptions: (NatsConnectOptions & { servers: string | string[] }) | null;
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
    if (typeof options !== 'object' || options === null) {
      invalid('options', options, 'an object with either "connection" or "servers"');
    }
    const raw = options as unknown as Record<string, unknown>;
    const prefix = raw.prefix ?? 'riverside';
    if (typeof prefix !== 'string' || !isValidNatsPrefix(prefix)) {
      invalid('prefix', prefix, 'one or more "."-separated NATS subject tokens without "*", ">" or whitespace');
    }
    this.prefix = prefix;
    this.externalPrefix = `${prefix}.ext`;
    const hasConnection = raw.connection !== undefined;
    const hasServers = raw.servers !== undefined;
    if (hasConnection === hasServers) {
      invalid(
        hasConnection ? 'connection' : 'servers',
        hasConnection ? raw.connection : raw.servers,
        'either "connection" (a NatsConnection) or "servers" (NATS URLs), exactly one of them',
      );
    }
    if (hasConnection) {
      const connection = raw.connection as Record<string, unknown> | null;
      if (typeof connection !== 'object' || connection === null || !CONNECTION_METHODS.every((m) => typeof connection[m] === 'function')) {
        invalid('connection', raw.connection, 'a NatsConnection from connect() of @nats-io/transport-node v3');
      }
      for (const key of Object.keys(raw)) {
        if (!CONNECTION_KEYS.includes(key) && raw[key] !== undefined) {
          throw new InvalidOptionsError(
            key,
            `NatsTransport: option "${key}" only applies with "servers"; with "connection", configure the connection you pass.`,
          );
        }
      }
      this.givenConnection = connection as unknown as NatsConnectionLike;
      this.connectOptions = null;
      this.closeTimeout = 0;
      return;
    }
    const servers = raw.servers;
    const validServer = (s: unknown) => typeof s === 'string' && s.trim() !== '';
    if (!(validServer(servers) || (Array.isArray(servers) && servers.length > 0 && servers.every(validServer)))) {
      invalid('servers', servers, 'a NATS server URL or a non-empty array of them, e.g. "nats://127.0.0.1:4222"');
    }
    const closeTimeout = raw.closeTimeout ?? 2000;
    if (typeof closeTimeout !== 'number' || !Number.isFinite(closeTimeout) || closeTimeout <= 0) {
      invalid('closeTimeout', closeTimeout, 'a positive number of milliseconds');
    }
    this.closeTimeout = closeTimeout;
    const { prefix: _prefix, closeTimeout: _closeTimeout, ...connectOptions } = options as NatsTransportServersOptions;
    const given = Object.fromEntries(Object.entries(connectOptions).filter(([, value]) => value !== undefined));
    // A server node should outlive any outage, and has no use for its own messages.
    this.connectOptions = { maxReconnectAttempts: -1, noEcho: true, reconnectTimeWait: 250, ...given, servers: connectOptions.servers };
    this.givenConnection = null;
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
    const options = this.connectOptions!;
    try {
      return await nats.connect(options);
    } catch (error) {
      throw new Error(`NatsTransport could not connect to ${String(options.servers)}: ${(error as Error)?.message ?? error}`, {
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

function invalid(option: string, value: unknown, expected: string): never {
  throw new InvalidOptionsError(option, `NatsTransport: invalid option "${option}": expected ${expected}, got ${describeValue(value)}.`);
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
