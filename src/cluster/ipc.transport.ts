import { Logger } from '@nestjs/common';
import { OptionChecks } from './option-checks.js';
import type { RiversideTransport, TransportMessageHandler } from './transport.interface.js';
import { asChannelPayload, bytesProbe, type IpcChannel, type IpcHubMessage, isIpcHubMessage, sendQuietly } from './ipc-channel.js';

/**
 * Options of {@link IpcTransport}.
 * @publicApi
 */
export interface IpcTransportOptions {
  /**
   * Put in front of every topic on the hub: `<prefix>:user:42`. Apps sharing one primary stay
   * apart with different prefixes.
   * @default 'riverside'
   */
  prefix?: string;
  /**
   * The channel to the primary's {@link IpcHub}.
   * @default process (the IPC channel of a `cluster` worker)
   */
  channel?: IpcChannel;
  /** How long `connect()` (at bootstrap) waits for the hub to answer, in ms. @default 5000 */
  readyTimeout?: number;
}

const KNOWN_OPTIONS = ['prefix', 'channel', 'readyTimeout'] as const;
/** What one turn did goes in one IPC message, up to this many list entries (then one more message). */
const MAX_OPS = 1536;

/**
 * Carries deliveries between the `cluster` workers of one machine through an {@link IpcHub} in
 * the primary, over the workers' IPC channels: all cores on one port, no broker to run.
 * `runRiversideWorkers()` forks the workers and runs the hub.
 *
 * ```ts
 * RiversideModule.forRoot({ transport: new IpcTransport() });   // in each worker
 * ```
 *
 * For several machines, use `RedisTransport` or `NatsTransport` instead: the app is the same.
 * What a worker does in one event-loop turn (publications, subscriptions of new sessions)
 * travels in one IPC message. `connect()` fails (and with it
 * the boot) when the process has no IPC channel or no hub answers within `readyTimeout`.
 * @publicApi
 */
export class IpcTransport implements RiversideTransport {
  /** Put in front of every topic: `<prefix>:user:42`. */
  readonly prefix: string;
  /**
   * The hub acknowledges every subscription, in order, or the channel closes (its 'disconnect'
   * rejects what waits): a new session waits for its subscription however busy the primary is,
   * rather than 2 s.
   */
  readonly subscriptionsSettle = true;
  private readonly topicPrefix: string;
  private readonly readyTimeout: number;
  private readonly givenChannel: IpcChannel | undefined;
  private readonly logger = new Logger('Riverside');
  private channel: IpcChannel | null = null;
  private connecting: Promise<void> | null = null;
  /** Prefixed topic -> its handler. */
  private readonly handlers = new Map<string, TransportMessageHandler>();
  /** Requests waiting for the hub's ack, by id. */
  private readonly acks = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  private nextId = 1;
  /** This turn's operations for the hub: `'s'|'u', topic` and `'p', topic, payload`. */
  private ops: (string | Uint8Array)[] = [];
  /** Whether the channel carries bytes (found out at the hello), else base64 strings. */
  private bytes = false;
  /** The id of the hello, whose ack says whether the channel carries bytes. */
  private helloId = 0;
  /** The subscribe() calls waiting for this turn's batch to be acknowledged. */
  private opsWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  private flushScheduled = false;

  constructor(options: IpcTransportOptions = {}) {
    validateOptions(options);
    this.prefix = options.prefix ?? 'riverside';
    this.topicPrefix = `${this.prefix}:`;
    this.readyTimeout = options.readyTimeout ?? 5000;
    this.givenChannel = options.channel;
  }

  /** Says hello to the hub and waits for its answer, up to `readyTimeout`. */
  connect(): Promise<void> {
    return (this.connecting ??= this.open());
  }

  /**
   * Sent with this turn's other operations. Over a channel that carries bytes, `payload` is not
   * copied until then: it must not change before the end of the turn.
   */
  async publish(topic: string, payload: Uint8Array): Promise<void> {
    if (this.channel === null) throw notConnected();
    if (this.channel.connected === false) throw channelClosed();
    this.queue('p', this.topicPrefix + topic, asChannelPayload(payload, this.bytes));
  }

  /** Resolves once the hub holds the subscription (sent with this turn's other operations). */
  async subscribe(topic: string, handler: TransportMessageHandler): Promise<void> {
    if (this.channel === null) throw notConnected();
    if (this.channel.connected === false) throw channelClosed();
    const prefixed = this.topicPrefix + topic;
    const known = this.handlers.has(prefixed);
    this.handlers.set(prefixed, handler);
    if (known) return;
    const held = new Promise<void>((resolve, reject) => this.opsWaiters.push({ resolve, reject }));
    this.queue('s', prefixed);
    await held;
  }

  async unsubscribe(topic: string): Promise<void> {
    const prefixed = this.topicPrefix + topic;
    if (!this.handlers.delete(prefixed) || this.channel === null) return;
    this.queue('u', prefixed);
  }

  /** Sends what is still queued, tells the hub to forget this worker's topics, stops listening. */
  async close(): Promise<void> {
    const channel = this.channel;
    if (channel === null) return;
    this.flush();
    sendQuietly(channel, { riverside: 'bye' });
    channel.off('message', this.onMessage);
    disconnectEvents(channel).off?.('disconnect', this.onDisconnect);
    this.channel = null;
    this.connecting = null;
    this.handlers.clear();
    this.rejectWaiting(new Error('IpcTransport was closed'));
  }

  /** The channel closed under us (the primary died): nothing waiting will be answered. */
  private readonly onDisconnect = (): void => this.rejectWaiting(channelClosed());

  private rejectWaiting(error: Error): void {
    for (const { reject } of this.acks.values()) reject(error);
    this.acks.clear();
    for (const { reject } of this.opsWaiters) reject(error);
    this.opsWaiters = [];
  }

  private async open(): Promise<void> {
    const channel = this.givenChannel ?? processChannel();
    this.channel = channel;
    channel.on('message', this.onMessage);
    disconnectEvents(channel).on?.('disconnect', this.onDisconnect);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `IpcTransport: no IpcHub answered within readyTimeout (${this.readyTimeout} ms). Start the workers with ` +
                'runRiversideWorkers(), or attach each worker to an IpcHub in the primary.',
            ),
          ),
        this.readyTimeout,
      );
    });
    try {
      await Promise.race([this.request(channel, (id) => ({ riverside: 'hello', id: (this.helloId = id), probe: bytesProbe() })), timeout]);
    } catch (error) {
      await this.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  private request(channel: IpcChannel, message: (id: number) => IpcHubMessage): Promise<void> {
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.acks.set(id, { resolve, reject });
      if (!sendQuietly(channel, message(id))) {
        this.acks.delete(id);
        reject(channelClosed());
      }
    });
  }

  private queue(op: string, topic: string, payload?: string | Uint8Array): void {
    if (payload === undefined) this.ops.push(op, topic);
    else this.ops.push(op, topic, payload);
    if (this.ops.length >= MAX_OPS) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushNow);
    }
  }

  private readonly flushNow = (): void => this.flush();

  private flush(): void {
    this.flushScheduled = false;
    const channel = this.channel;
    if (this.ops.length === 0 || channel === null) return;
    const ops = this.ops;
    const waiters = this.opsWaiters;
    this.ops = [];
    this.opsWaiters = [];
    if (waiters.length === 0) {
      sendQuietly(channel, { riverside: 'ops', id: 0, ops });
      return;
    }
    const id = this.nextId++;
    this.acks.set(id, {
      resolve: () => {
        for (const waiter of waiters) waiter.resolve();
      },
      reject: (error) => {
        for (const waiter of waiters) waiter.reject(error);
      },
    });
    if (!sendQuietly(channel, { riverside: 'ops', id, ops })) {
      this.acks.delete(id);
      for (const waiter of waiters) waiter.reject(channelClosed());
    }
  }

  private readonly onMessage = (message: unknown): void => {
    if (!isIpcHubMessage(message)) return;
    if (message.riverside === 'msg') {
      const batch = message.batch;
      for (let i = 0; i + 1 < batch.length; i += 2) this.dispatch(batch[i], batch[i + 1]);
    } else if (message.riverside === 'ack') {
      if (message.id === this.helloId) this.bytes = message.probe instanceof Uint8Array;
      const waiter = this.acks.get(message.id);
      this.acks.delete(message.id);
      waiter?.resolve();
    }
  };

  private dispatch(topic: string | Uint8Array, payload: string | Uint8Array): void {
    if (typeof topic !== 'string') return;
    const handler = this.handlers.get(topic);
    if (handler === undefined) return; // unsubscribed while the batch was on its way
    try {
      handler(typeof payload === 'string' ? Buffer.from(payload, 'base64') : payload, topic.slice(this.topicPrefix.length));
    } catch (error) {
      // One topic's handler must not cost the rest of the batch.
      this.logger.error(`IpcTransport: the handler of ${topic} threw: ${(error as Error).message}`);
    }
  }
}

function processChannel(): IpcChannel {
  if (typeof process.send !== 'function') {
    throw new Error(
      'IpcTransport: this process has no IPC channel (process.send is undefined): it carries deliveries between ' +
        'cluster workers only. Start the app with runRiversideWorkers(), or use LocalTransport (one process) or ' +
        'RedisTransport / NatsTransport (several machines).',
    );
  }
  return process as unknown as IpcChannel;
}

/** `process` and a `cluster.Worker` emit 'disconnect' when their IPC channel closes; other channels may not. */
function disconnectEvents(channel: IpcChannel): { on?(event: 'disconnect', listener: () => void): unknown; off?(event: 'disconnect', listener: () => void): unknown } {
  return channel as unknown as ReturnType<typeof disconnectEvents>;
}

function notConnected(): Error {
  return new Error('IpcTransport is not connected (connect() was not called, or close() was)');
}

function channelClosed(): Error {
  return new Error('IpcTransport: the IPC channel to the primary is closed');
}

function validateOptions(options: IpcTransportOptions): void {
  const check = new OptionChecks('IpcTransport');
  check.knownKeys(options, KNOWN_OPTIONS);
  const { prefix, channel, readyTimeout } = options;
  if (prefix !== undefined && (typeof prefix !== 'string' || prefix === '')) check.invalid('prefix', prefix, 'a non-empty string');
  if (
    channel !== undefined &&
    (typeof channel !== 'object' || channel === null || !['send', 'on', 'off'].every((m) => typeof (channel as unknown as Record<string, unknown>)[m] === 'function'))
  ) {
    check.invalid('channel', channel, 'an IPC channel with send(), on() and off() (process, a cluster Worker)');
  }
  check.optionalPositiveInteger('readyTimeout', readyTimeout, 'ms');
}
