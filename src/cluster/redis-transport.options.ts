import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import { describeValue } from '../riverside.messages.js';
import { OptionChecks } from './option-checks.js';

/**
 * The part of an ioredis client that `RedisTransport` uses. An ioredis `Redis` (v5 or v6)
 * satisfies it; ioredis itself is never imported unless `url` is given.
 * @publicApi
 */
export interface RedisClientLike {
  /** ioredis' connection state: `wait`, `connecting`, `connect`, `ready`, `close`, `reconnecting` or `end`. */
  readonly status: string;
  /**
   * ioredis' socket to Redis. When it can be corked, the publishes of one event-loop turn leave
   * in one write (uncorked at the end of the turn) instead of one write each.
   */
  readonly stream?: { cork?(): void; uncork?(): void };
  publish(channel: string, message: Buffer): Promise<unknown>;
  subscribe(...channels: string[]): Promise<unknown>;
  unsubscribe(...channels: string[]): Promise<unknown>;
  /** Used for the external namespace (`<prefix>:ext:*`); without it, there is none. */
  psubscribe?(...patterns: string[]): Promise<unknown>;
  punsubscribe?(...patterns: string[]): Promise<unknown>;
  on(event: 'messageBuffer', listener: (channel: Buffer, message: Buffer) => void): unknown;
  on(event: 'pmessageBuffer', listener: (pattern: Buffer, channel: Buffer, message: Buffer) => void): unknown;
  on(event: 'ready' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'messageBuffer', listener: (channel: Buffer, message: Buffer) => void): unknown;
  off(event: 'pmessageBuffer', listener: (pattern: Buffer, channel: Buffer, message: Buffer) => void): unknown;
  off(event: 'ready' | 'close', listener: () => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
  duplicate(override?: RedisConnectionOverrides): RedisClientLike;
  connect(): Promise<unknown>;
  quit(): Promise<unknown>;
  disconnect(): void;
}

/**
 * The server a client connects to, as logs name it: `host:port` (or the socket path) from an
 * ioredis client's options, never its credentials; `Redis` for a client that does not say.
 */
export function serverOf(client: RedisClientLike): string {
  const { host, port, path } = (client as { options?: { host?: unknown; port?: unknown; path?: unknown } }).options ?? {};
  if (typeof path === 'string' && path !== '') return path;
  if (typeof host !== 'string' || host === '') return 'Redis';
  const shown = host.includes(':') ? `[${host}]` : host; // IPv6
  return typeof port === 'number' ? `${shown}:${port}` : shown;
}

/** The ioredis options RedisTransport sets on the connections it creates. */
export interface RedisConnectionOverrides {
  lazyConnect?: boolean;
  enableOfflineQueue?: boolean;
  autoResubscribe?: boolean;
  autoResendUnfulfilledCommands?: boolean;
  maxRetriesPerRequest?: number;
  retryStrategy?: (attempt: number) => number;
}

interface RedisTransportCommonOptions {
  /**
   * Put in front of every topic: the Redis channel of `user:42` is `<prefix>:user:42`.
   * Deployments sharing one Redis stay apart with different prefixes.
   * @default 'riverside'
   */
  prefix?: string;
  /**
   * How long `connect()` (run at application bootstrap) waits for both connections to be
   * ready, in ms. When Redis cannot be reached by then, the application does not start.
   * @default 10000
   */
  readyTimeout?: number;
  /**
   * Longest wait between two reconnection attempts of the connections RedisTransport creates
   * (`url` and the subscriber of `client`), in ms: attempt n waits min(50 * n, this). A node is
   * back at most this long after Redis is. Clients you pass keep their own `retryStrategy`.
   * @default 500
   */
  maxReconnectDelay?: number;
}

/**
 * Two ioredis clients of yours: one publishes, the other is dedicated to subscribing (a Redis
 * connection that subscribes cannot publish). RedisTransport never closes them; at `close()`
 * it unsubscribes its channels from `subscriber` and removes its listeners. It connects them
 * if they were created with `lazyConnect`.
 *
 * Whatever their options, a publish or subscribe fails at once while a client is not ready.
 * One written just before ioredis notices an outage waits for ioredis' retries, though (up to
 * `maxRetriesPerRequest`, 20 by default, about 10 s): create the clients with
 * `{ maxRetriesPerRequest: 1 }` (or `enableOfflineQueue: false` and a `commandTimeout`) to
 * bound that too, as RedisTransport does for the connections it creates.
 * @publicApi
 */
export interface RedisTransportClientsOptions extends RedisTransportCommonOptions {
  publisher: RedisClientLike;
  subscriber: RedisClientLike;
  client?: never;
  url?: never;
}

/**
 * One ioredis client of yours, used to publish (and never closed by RedisTransport; the advice
 * on its options under {@link RedisTransportClientsOptions} applies); the subscriber is
 * `client.duplicate()`, with the transport's own fail-fast options, which RedisTransport owns
 * and closes.
 * @publicApi
 */
export interface RedisTransportClientOptions extends RedisTransportCommonOptions {
  client: RedisClientLike;
  publisher?: never;
  subscriber?: never;
  url?: never;
}

/**
 * A `redis://` or `rediss://` URL: RedisTransport creates both connections with ioredis (an
 * optional peer dependency, loaded only in this case) and closes them.
 * @publicApi
 */
export interface RedisTransportUrlOptions extends RedisTransportCommonOptions {
  url: string;
  client?: never;
  publisher?: never;
  subscriber?: never;
}

/**
 * Options of `new RedisTransport(options)`: exactly one of `publisher` + `subscriber`,
 * `client` or `url`, plus the common options.
 * @publicApi
 */
export type RedisTransportOptions = RedisTransportClientsOptions | RedisTransportClientOptions | RedisTransportUrlOptions;

const KNOWN_OPTIONS = ['url', 'client', 'publisher', 'subscriber', 'prefix', 'readyTimeout', 'maxReconnectDelay'] as const;
/** What each given client must have: the methods RedisTransport calls on it in that role. */
const CLIENT_METHODS = {
  client: ['publish', 'duplicate', 'on', 'off', 'connect', 'quit', 'disconnect'],
  publisher: ['publish', 'on', 'off', 'connect', 'quit', 'disconnect'],
  subscriber: ['subscribe', 'unsubscribe', 'on', 'off', 'connect', 'quit', 'disconnect'],
} as const satisfies Record<string, readonly string[]>;

const checks: OptionChecks = new OptionChecks('RedisTransport');

/**
 * Checks the options of `new RedisTransport(options)` before anything is connected: exactly one
 * way of connecting, clients that have what the transport calls, and the common options' ranges.
 * @throws InvalidOptionsError naming the option, what was expected and what was given.
 */
export function validateRedisTransportOptions(options: RedisTransportOptions): RedisTransportOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    checks.invalid('options', options, 'an object: { url }, { client } or { publisher, subscriber }');
  }
  const raw = options as unknown as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!(KNOWN_OPTIONS as readonly string[]).includes(key)) {
      throw new InvalidOptionsError(
        key,
        `RedisTransport: unknown option "${key}" (got ${describeValue(raw[key])}); the known options are ${KNOWN_OPTIONS.join(', ')}.`,
      );
    }
  }
  const given = (['url', 'client', 'publisher', 'subscriber'] as const).filter((key) => raw[key] !== undefined);
  const shapes = new Set(given.map((key) => (key === 'subscriber' ? 'publisher' : key)));
  if (shapes.size === 0) {
    throw new InvalidOptionsError(
      'client',
      'RedisTransport: no Redis connection given: pass { url: "redis://..." }, { client } (an ioredis client; ' +
        'the subscriber is its duplicate()) or { publisher, subscriber } (two ioredis clients).',
    );
  }
  if (shapes.size > 1) {
    const [first, second] = given;
    throw new InvalidOptionsError(
      second,
      `RedisTransport: options "${first}" and "${second}" exclude each other: pass only one of { url }, { client } ` +
        'or { publisher, subscriber }.',
    );
  }
  if (raw.url !== undefined) {
    if (typeof raw.url !== 'string' || !isRedisUrl(raw.url)) checks.invalid('url', raw.url, 'a redis:// or rediss:// URL');
  } else if (raw.client !== undefined) {
    checkClient('client', raw.client);
  } else {
    if (raw.publisher === undefined) checks.invalid('publisher', raw.publisher, 'an ioredis client to publish with, given with subscriber');
    if (raw.subscriber === undefined) checks.invalid('subscriber', raw.subscriber, 'an ioredis client dedicated to subscribing, given with publisher');
    checkClient('publisher', raw.publisher);
    checkClient('subscriber', raw.subscriber);
    if (raw.publisher === raw.subscriber) {
      throw new InvalidOptionsError(
        'subscriber',
        'RedisTransport: invalid option "subscriber": it is the same client as "publisher", but a Redis connection ' +
          'that subscribes cannot publish. Pass a second client, or { client } to let RedisTransport duplicate it.',
      );
    }
  }
  if (raw.prefix !== undefined && (typeof raw.prefix !== 'string' || raw.prefix.length === 0)) {
    checks.invalid('prefix', raw.prefix, 'a non-empty string');
  }
  checks.optionalPositiveInteger('readyTimeout', raw.readyTimeout, 'ms');
  checks.optionalPositiveInteger('maxReconnectDelay', raw.maxReconnectDelay, 'ms');
  return options;
}

function checkClient(option: keyof typeof CLIENT_METHODS, value: unknown): void {
  const methods = CLIENT_METHODS[option];
  const expected = `an ioredis client (status, ${methods.join(', ')})`;
  if (typeof value !== 'object' || value === null) checks.invalid(option, value, expected);
  const candidate = value as Record<string, unknown>;
  const missing = [
    ...(typeof candidate.status === 'string' ? [] : ['status']),
    ...methods.filter((method) => typeof candidate[method] !== 'function').map((method) => `${method}()`),
  ];
  if (missing.length > 0) {
    throw new InvalidOptionsError(
      option,
      `RedisTransport: invalid option "${option}": expected ${expected}, got ${describeValue(value)} without ${missing.join(', ')}.`,
    );
  }
}

function isRedisUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === 'redis:' || protocol === 'rediss:';
  } catch {
    return false;
  }
}