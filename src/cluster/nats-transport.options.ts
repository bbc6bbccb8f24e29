import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import { isValidNatsPrefix } from './nats-subjects.js';
import { OptionChecks } from './option-checks.js';

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

/** `connect()` options as NatsTransport passes them: the given ones over the server-node defaults. */
export type NatsConnectSettings = NatsConnectOptions & { servers: string | string[] };

/** What `new NatsTransport(options)` works from, once checked. */
export interface ResolvedNatsTransportOptions {
  readonly prefix: string;
  /** The connection you gave (left open at close()); null when the transport connects itself. */
  readonly connection: NatsConnectionLike | null;
  /** With `servers`: how the transport connects; null with `connection`. */
  readonly connectSettings: NatsConnectSettings | null;
  /** Bound of each close() step with `servers`, in ms; 0 with `connection`. */
  readonly closeTimeout: number;
}

const CONNECTION_KEYS = ['prefix', 'connection'];
const CONNECTION_METHODS = ['publish', 'subscribe', 'flush', 'drain', 'close', 'isClosed', 'status'] as const;

// Annotated: a call to a never-returning method narrows only through an explicitly typed const.
const checks: OptionChecks = new OptionChecks('NatsTransport');

/**
 * Checks the options of `new NatsTransport(options)` before anything is loaded or connected, and
 * applies the defaults of a server node (reconnect forever, quickly, without echo).
 * @throws InvalidOptionsError naming the option, what was expected and what was given.
 */
export function resolveNatsTransportOptions(options: NatsTransportOptions): ResolvedNatsTransportOptions {
  if (typeof options !== 'object' || options === null) {
    checks.invalid('options', options, 'an object with either "connection" or "servers"');
  }
  const raw = options as unknown as Record<string, unknown>;
  const prefix = raw.prefix ?? 'riverside';
  if (typeof prefix !== 'string' || !isValidNatsPrefix(prefix)) {
    checks.invalid('prefix', prefix, 'one or more "."-separated NATS subject tokens without "*", ">" or whitespace');
  }
  const hasConnection = raw.connection !== undefined;
  const hasServers = raw.servers !== undefined;
  if (hasConnection === hasServers) {
    checks.invalid(
      hasConnection ? 'connection' : 'servers',
      hasConnection ? raw.connection : raw.servers,
      'either "connection" (a NatsConnection) or "servers" (NATS URLs), exactly one of them',
    );
  }
  if (hasConnection) {
    const connection = raw.connection as Record<string, unknown> | null;
    if (typeof connection !== 'object' || connection === null || !CONNECTION_METHODS.every((m) => typeof connection[m] === 'function')) {
      checks.invalid('connection', raw.connection, 'a NatsConnection from connect() of @nats-io/transport-node v3');
    }
    for (const key of Object.keys(raw)) {
      if (!CONNECTION_KEYS.includes(key) && raw[key] !== undefined) {
        throw new InvalidOptionsError(
          key,
          `NatsTransport: option "${key}" only applies with "servers"; with "connection", configure the connection you pass.`,
        );
      }
    }
    return { prefix, connection: connection as unknown as NatsConnectionLike, connectSettings: null, closeTimeout: 0 };
  }
  const servers = raw.servers;
  const validServer = (s: unknown) => typeof s === 'string' && s.trim() !== '';
  if (!(validServer(servers) || (Array.isArray(servers) && servers.length > 0 && servers.every(validServer)))) {
    checks.invalid('servers', servers, 'a NATS server URL or a non-empty array of them, e.g. "nats://127.0.0.1:4222"');
  }
  const closeTimeout = raw.closeTimeout ?? 2000;
  if (typeof closeTimeout !== 'number' || !Number.isFinite(closeTimeout) || closeTimeout <= 0) {
    checks.invalid('closeTimeout', closeTimeout, 'a positive number of milliseconds');
  }
  const { prefix: _prefix, closeTimeout: _closeTimeout, ...connectOptions } = options as NatsTransportServersOptions;
  const given = Object.fromEntries(Object.entries(connectOptions).filter(([, value]) => value !== undefined));
  // A server node should outlive any outage, and has no use for its own messages.
  const connectSettings = { maxReconnectAttempts: -1, noEcho: true, reconnectTimeWait: 250, ...given, servers: connectOptions.servers };
  return { prefix, connection: null, connectSettings, closeTimeout };
}
