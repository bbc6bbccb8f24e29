import { MissingPackageError } from '../errors/missing-package.error.js';
import { requireOptional } from '../optional-package.js';
import { flushAtEndOfTurn, type TurnFlushable } from '../event-loop-turn.js';
import { BrokerTransport, TOPIC_CHUNK, within } from './broker-transport.js';
import { type OwnRedisPublisher, QuietPublisher } from './redis-quiet-publisher.js';
import {
  type RedisClientLike,
  type RedisConnectionOverrides,
  type RedisTransportOptions,
  serverOf,
  validateRedisTransportOptions,
} from './redis-transport.options.js';
import type { TransportMessageHandler } from './transport.interface.js';

type RedisConstructor = new (url: string, options: RedisConnectionOverrides) => RedisClientLike;
type Role = 'publisher' | 'subscriber';

/**
 * For the connections RedisTransport owns: fail fast instead of queueing while Redis is down
 * (no offline queue, no retry of in-flight commands), and no ioredis resubscription: the
 * transport resubscribes its own channels on every 'ready', which also covers the channels
 * that failed to subscribe during an outage.
 */
const OWN_CONNECTION: RedisConnectionOverrides = {
  lazyConnect: true,
  enableOfflineQueue: false,
  autoResubscribe: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 0,
};
/** How long close() lets QUIT (or a final UNSUBSCRIBE) take before cutting the connection. */
const CLOSE_TIMEOUT = 1000;
/** Characters with a meaning in a PSUBSCRIBE pattern, escaped in the prefix. */
const GLOB_SPECIAL = /[*?[\]\\]/g;

const noop = (): void => {};

/**
 * Carries deliveries between nodes over Redis pub/sub, with ioredis. Each topic is the Redis
 * channel `<prefix>:<topic>` (`riverside:user:42`). External publishers have their own
 * namespace, received through one `PSUBSCRIBE <prefix>:ext:*` per node:
 * `redis-cli PUBLISH riverside:ext:user:42 '{"hello":1}'` reaches user 42 as a text frame
 * (binary when the payload is not UTF-8).
 *
 * ```ts
 * RiversideModule.forRoot({ transport: new RedisTransport({ url: process.env.REDIS_URL }) });
 * new RedisTransport({ client: redis, prefix: 'chat' });          // subscriber = redis.duplicate()
 * new RedisTransport({ publisher: pub, subscriber: sub });         // both yours, never closed by us
 * ```
 *
 * While Redis is down, local delivery goes on: `publish()` rejects at once (counted in
 * `RiversideStats.transportErrors`) rather than queueing, whatever the client's offline-queue
 * setting. With `url`, the publisher asks Redis not to answer its PUBLISH commands (`CLIENT
 * REPLY OFF`, once Redis has accepted `CLIENT REPLY` and a PUBLISH under the prefix): one read
 * less per publish. On every reconnect the subscriber resubscribes to every topic this node needs,
 * including those that failed during the outage, 1000 channels per SUBSCRIBE. `close()` never
 * waits more than about a second, Redis up or not.
 *
 * Throws an `InvalidOptionsError` for invalid options, and a `MissingPackageError` when
 * `url` is given and `ioredis` is not installed.
 * @publicApi
 */
export class RedisTransport extends BrokerTransport {
  /** Put in front of every topic: `<prefix>:user:42`. */
  readonly prefix: string;
  private readonly channelPrefix: string;
  private readonly externalPattern: string;
  private readonly externalChannelPrefix: string;
  private readonly readyTimeout: number;
  private readonly options: RedisTransportOptions;
  private readonly ownConnection: RedisConnectionOverrides;
  private readonly Redis: RedisConstructor | null;
  /** Publishes without Redis' replies, on a publisher connection of our own (`url`). */
  private readonly quiet: QuietPublisher;

  private publisher: RedisClientLike | null = null;
  private subscriber: RedisClientLike | null = null;
  private ownsPublisher = false;
  private ownsSubscriber = false;
  private connecting: Promise<void> | null = null;
  /** The publisher's socket while corked for this turn's publishes. */
  private corked: RedisClientLike['stream'] | null = null;
  private abortConnect: ((error: Error) => void) | null = null;
  private lastError: Error | null = null;
  /** Where each connection stands, to log an outage and a recovery once each. */
  private readonly state: Record<Role, 'connecting' | 'up' | 'down'> = { publisher: 'connecting', subscriber: 'connecting' };
  /** The server each connection goes to (`host:port`), named in errors and logs: with several Redis servers, which one. */
  private readonly server: Record<Role, string> = { publisher: 'Redis', subscriber: 'Redis' };

  constructor(options: RedisTransportOptions) {
    super('RedisTransport');
    this.options = validateRedisTransportOptions(options);
    this.prefix = options.prefix ?? 'riverside';
    this.channelPrefix = `${this.prefix}:`;
    this.externalChannelPrefix = `${this.prefix}:ext:`;
    this.externalPattern = `${this.prefix.replace(GLOB_SPECIAL, '\\$&')}:ext:*`;
    this.readyTimeout = options.readyTimeout ?? 10_000;
    const maxDelay = options.maxReconnectDelay ?? 500;
    this.ownConnection = { ...OWN_CONNECTION, retryStrategy: (attempt) => Math.min(50 * attempt, maxDelay) };
    this.Redis = options.url !== undefined ? loadIoredis() : null;
    this.quiet = new QuietPublisher(this.logger, `${this.channelPrefix}publish-check`);
  }

  /** Opens (or adopts) the connections and waits until both are ready, up to `readyTimeout`. */
  connect(): Promise<void> {
    return (this.connecting ??= this.open());
  }

  /**
   * Publishes of one event-loop turn go out in one write: the first corks the publisher's
   * socket, which is uncorked at the end of the turn (with the WebSocket writes of that turn).
   */
  async publish(topic: string, payload: Uint8Array): Promise<void> {
    const publisher = this.publisher;
    if (publisher === null) throw notConnected();
    // Checked here rather than left to ioredis, so that a client with an offline queue (the
    // ioredis default) fails fast too instead of piling up publishes while Redis is down.
    if (publisher.status !== 'ready') throw new Error(`Redis publisher connection to ${this.server.publisher} is ${publisher.status}, not ready`);
    if (this.corked === null) this.cork(publisher.stream);
    if (this.quiet.isQuiet(publisher)) {
      this.quiet.publish(publisher, this.channelPrefix + topic, toBuffer(payload));
      return;
    }
    await publisher.publish(this.channelPrefix + topic, toBuffer(payload));
  }

  /** Ends the turn's batch of publishes (see publish()). */
  private readonly endOfTurn: TurnFlushable = {
    flushTurn: () => {
      const stream = this.corked;
      this.corked = null;
      stream?.uncork?.();
    },
  };

  private cork(stream: RedisClientLike['stream']): void {
    if (typeof stream?.cork !== 'function' || typeof stream.uncork !== 'function') return;
    stream.cork();
    this.corked = stream;
    flushAtEndOfTurn(this.endOfTurn);
  }

  /**
   * Receives `<prefix>:ext:*` (one PSUBSCRIBE, renewed on every reconnect): what external
   * services publish. Needs a subscriber with psubscribe() (every ioredis client has it).
   */
  async subscribeExternal(handler: TransportMessageHandler): Promise<void> {
    const subscriber = this.subscriber;
    if (subscriber === null) throw notConnected();
    if (typeof subscriber.psubscribe !== 'function') {
      throw new Error('RedisTransport: the subscriber client has no psubscribe(); the external namespace is not available');
    }
    this.externalHandler = handler;
    if (subscriber.status === 'ready') await subscriber.psubscribe(this.externalPattern);
  }

  protected canSend(): boolean {
    return this.subscriber?.status === 'ready';
  }

  protected async sendSubscribe(topics: readonly string[]): Promise<void> {
    await (this.subscriber as RedisClientLike).subscribe(...topics.map((topic) => this.channelPrefix + topic));
  }

  /** Redis answers NOPERM for a whole SUBSCRIBE when its ACL refuses one of the channels. */
  protected override isRefusal(error: unknown): boolean {
    return error instanceof Error && error.message.startsWith('NOPERM');
  }

  protected async sendUnsubscribe(topics: readonly string[]): Promise<void> {
    await (this.subscriber as RedisClientLike).unsubscribe(...topics.map((topic) => this.channelPrefix + topic));
  }

  protected assertOpen(): void {
    if (this.subscriber === null) throw notConnected();
  }

  /**
   * Closes the connections RedisTransport created (QUIT when ready, else an immediate
   * disconnect; bounded either way); from clients that are yours it only unsubscribes its
   * channels and removes its listeners.
   */
  async close(): Promise<void> {
    const { publisher, subscriber } = this;
    if (publisher === null || subscriber === null) return;
    this.publisher = this.subscriber = null;
    this.connecting = null;
    this.abortConnect?.(new Error('RedisTransport was closed while connecting'));
    const hadExternal = this.externalHandler !== null;
    // Redis answers nothing on a quiet connection, not even QUIT: close it without one.
    const quietPublisher = this.quiet.isQuiet(publisher);
    this.quiet.forget();
    const channels = this.forgetTopics().map((topic) => this.channelPrefix + topic);
    this.detach(publisher, subscriber);
    await Promise.all([
      quietPublisher ? publisher.disconnect() : this.ownsPublisher ? release(publisher) : undefined,
      this.ownsSubscriber
        ? release(subscriber)
        : subscriber.status === 'ready'
          ? within(CLOSE_TIMEOUT, leave(subscriber, channels, hadExternal ? this.externalPattern : null))
          : undefined,
    ]);
  }

  private async open(): Promise<void> {
    const options = this.options;
    if (options.url !== undefined) {
      // Non-null: the constructor loads ioredis whenever url is given.
      const Redis = this.Redis as RedisConstructor;
      this.publisher = new Redis(options.url, this.ownConnection);
      this.subscriber = new Redis(options.url, this.ownConnection);
      this.ownsPublisher = this.ownsSubscriber = true;
    } else if (options.client !== undefined) {
      this.publisher = options.client;
      this.subscriber = options.client.duplicate(this.ownConnection);
      this.ownsPublisher = false;
      this.ownsSubscriber = true;
    } else {
      this.publisher = options.publisher;
      this.subscriber = options.subscriber;
      this.ownsPublisher = this.ownsSubscriber = false;
    }
    const { publisher, subscriber } = this;
    this.server.publisher = serverOf(publisher);
    this.server.subscriber = serverOf(subscriber);
    this.state.publisher = this.state.subscriber = 'connecting';
    this.lastError = null;
    publisher.on('ready', this.onPublisherReady);
    publisher.on('close', this.onPublisherClose);
    subscriber.on('ready', this.onSubscriberReady);
    subscriber.on('close', this.onSubscriberClose);
    subscriber.on('messageBuffer', this.onMessage);
    subscriber.on('pmessageBuffer', this.onPatternMessage);
    // Only on our own connections: on yours, an 'error' listener would change what ioredis does
    // with errors (it prints them when nobody listens).
    if (this.ownsPublisher) publisher.on('error', this.onError);
    if (this.ownsSubscriber) subscriber.on('error', this.onError);
    // A lazyConnect client waits for connect(); its failures surface as 'error'/'close' events
    // (ioredis keeps retrying) and through the readyTimeout below.
    for (const client of [publisher, subscriber]) if (client.status === 'wait') client.connect().catch(noop);
    try {
      await this.whenReady(publisher, subscriber);
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  private whenReady(publisher: RedisClientLike, subscriber: RedisClientLike): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const settle = (error: Error | null) => {
        clearTimeout(timer);
        publisher.off('ready', check);
        subscriber.off('ready', check);
        this.abortConnect = null;
        if (error) reject(error);
        else resolve();
      };
      const check = () => {
        if (publisher.status === 'ready' && subscriber.status === 'ready') settle(null);
        else if (publisher.status === 'end' || subscriber.status === 'end') {
          const which = publisher.status === 'end' ? 'publisher' : 'subscriber';
          settle(new Error(`RedisTransport cannot connect: the ${which} Redis client is closed (status "end")`));
        }
      };
      const timer = setTimeout(() => {
        const cause = this.lastError ? ` (last error: ${this.lastError.message})` : '';
        settle(
          new Error(
            `RedisTransport could not reach Redis at ${this.servers()} within readyTimeout (${this.readyTimeout} ms): the publisher ` +
              `connection is ${publisher.status}, the subscriber connection ${subscriber.status}${cause}. ` +
              'Check the Redis address, or raise readyTimeout.',
          ),
        );
      }, this.readyTimeout);
      this.abortConnect = settle;
      publisher.on('ready', check);
      subscriber.on('ready', check);
      check();
    });
  }

  private detach(publisher: RedisClientLike, subscriber: RedisClientLike): void {
    publisher.off('ready', this.onPublisherReady);
    publisher.off('close', this.onPublisherClose);
    subscriber.off('ready', this.onSubscriberReady);
    subscriber.off('close', this.onSubscriberClose);
    subscriber.off('messageBuffer', this.onMessage);
    subscriber.off('pmessageBuffer', this.onPatternMessage);
    // The 'error' listener stays on our own connections: an error while they close would
    // otherwise be printed by ioredis.
  }

  private readonly onMessage = (channel: Buffer, message: Buffer): void => {
    const name = channel.toString();
    const topic = name.startsWith(this.channelPrefix) ? name.slice(this.channelPrefix.length) : null;
    const handler = topic === null ? undefined : this.handlerOf(topic);
    if (handler === undefined) {
      // A channel of ours that nobody here needs any more: typically resubscribed by the
      // autoResubscribe of a client you gave after we unsubscribed while Redis was down.
      if (topic !== null && this.subscriber?.status === 'ready') this.subscriber.unsubscribe(name).catch(noop);
      return;
    }
    // Thrown inside ioredis' reply parser, an exception would break the connection for every topic.
    this.dispatch(handler, message, topic as string);
  };

  private readonly onPatternMessage = (_pattern: Buffer, channel: Buffer, message: Buffer): void => {
    const handler = this.externalHandler;
    const name = channel.toString();
    if (handler === null || !name.startsWith(this.externalChannelPrefix)) return;
    this.dispatch(handler, message, name.slice(this.externalChannelPrefix.length));
  };

  private readonly onSubscriberReady = (): void => {
    this.restored('subscriber');
    const subscriber = this.subscriber;
    if (subscriber === null) return;
    if (this.externalHandler !== null && subscriber.psubscribe) {
      subscriber.psubscribe(this.externalPattern).catch((error: Error) =>
        this.logger.error(`RedisTransport: subscribing to ${this.externalPattern} failed (retried on the next reconnect): ${error.message}`),
      );
    }
    if (this.topics.size === 0) return;
    this.resubscribeAll().then(
      (count) => this.logger.log(`RedisTransport: resubscribed to ${count} topic(s)`),
      (error: Error) => this.logger.error(`RedisTransport: resubscribing failed (retried on the next reconnect): ${error.message}`),
    );
  };

  private readonly onPublisherReady = (): void => {
    this.restored('publisher');
    if (this.ownsPublisher && this.publisher !== null) this.quiet.engage(this.publisher as OwnRedisPublisher);
  };
  private readonly onPublisherClose = (): void => this.lost('publisher');
  private readonly onSubscriberClose = (): void => this.lost('subscriber');
  private readonly onError = (error: Error): void => {
    this.lastError = error;
  };

  private restored(role: Role): void {
    if (this.state[role] === 'down') this.logger.log(`RedisTransport: the Redis ${role} connection to ${this.server[role]} is back`);
    this.state[role] = 'up';
  }

  private lost(role: Role): void {
    if (this.state[role] !== 'up') return;
    this.state[role] = 'down';
    const effect =
      role === 'publisher' ? 'deliveries to other nodes fail' : 'deliveries from other nodes are missed';
    this.logger.warn(`RedisTransport: lost the Redis ${role} connection to ${this.server[role]}; ${effect} until it is back (local delivery goes on)`);
  }

  /** `host:port`, or both when the two connections go to different servers. */
  private servers(): string {
    const { publisher, subscriber } = this.server;
    return publisher === subscriber ? publisher : `${publisher} (publisher) and ${subscriber} (subscriber)`;
  }
}

function notConnected(): Error {
  return new Error('RedisTransport is not connected (connect() was not called, or close() was)');
}

function toBuffer(payload: Uint8Array): Buffer {
  return Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
}

/** QUIT when ready (bounded), else disconnect at once: never waits on a Redis that is down. */
async function release(client: RedisClientLike): Promise<void> {
  if (client.status === 'ready' && (await within(CLOSE_TIMEOUT, client.quit().then(noop, noop)))) return;
  client.disconnect();
}

/** Unsubscribes a client that is yours from our channels (chunked) and pattern; never throws. */
async function leave(subscriber: RedisClientLike, channels: string[], pattern: string | null): Promise<void> {
  for (let start = 0; start < channels.length; start += TOPIC_CHUNK) {
    await subscriber.unsubscribe(...channels.slice(start, start + TOPIC_CHUNK)).catch(noop);
  }
  if (pattern !== null) await subscriber.punsubscribe?.(pattern).catch(noop);
}

function loadIoredis(): RedisConstructor {
  const ioredis = requireOptional<{ Redis?: RedisConstructor; default?: RedisConstructor }>('ioredis', 'RedisTransport');
  const Redis = ioredis.Redis ?? ioredis.default;
  if (typeof Redis !== 'function') throw new MissingPackageError('ioredis', 'RedisTransport');
  return Redis;
}
