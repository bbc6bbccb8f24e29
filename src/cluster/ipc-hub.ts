import { Logger } from '@nestjs/common';
import { LogThrottle } from './log-throttle.js';
import { OptionChecks } from './option-checks.js';
import { asChannelPayload, type IpcChannel, bytesProbe, isIpcHubMessage, sendQuietly } from './ipc-channel.js';

/**
 * Options of {@link IpcHub}.
 * @publicApi
 */
export interface IpcHubOptions {
  /**
   * Bytes of deliveries (payloads and topics) the hub may hold for one worker that has not read
   * them yet: queued for the end of the turn, or handed to its IPC channel and not yet written
   * to it. A worker that stops reading (blocked event loop, stopped process) would otherwise
   * make the primary buffer everything the others publish for it. Past this, deliveries to that
   * worker are dropped (as `slowConsumer: 'drop'` does for a socket) until it catches up: counted
   * in `droppedMessages`, logged at most once per 5 s.
   * @default 67108864 (64 MiB)
   */
  maxWorkerBacklog?: number;
}

const KNOWN_OPTIONS = ['maxWorkerBacklog'] as const;

/** What the hub knows of one attached worker. */
class Attached {
  readonly topics = new Set<string>();
  /** `[topic, payload, ...]` waiting for the end of this turn. */
  outbox: (string | Uint8Array)[] = [];
  /** Bytes in the outbox, then sent and not yet written to the channel. */
  backlog = 0;
  /** Bytes of the outbox (part of backlog). */
  outboxBytes = 0;
  /** Whether the channel carries bytes (found out at the hello), else base64 strings. */
  bytes = false;
  /** Its drops are logged at most once per interval. */
  readonly dropLog = new LogThrottle();

  constructor(
    readonly channel: IpcChannel,
    readonly listener: (message: unknown) => void,
  ) {}
}

/**
 * The broker of {@link IpcTransport}, running in the cluster primary: it routes each worker's
 * publications to the other workers subscribed to the topic, over the workers' IPC channels.
 * No network, no broker process: the embedded transport for the workers of one machine.
 * `runRiversideWorkers()` runs one and attaches every worker it forks; with `cluster` by hand:
 *
 * ```ts
 * const hub = new IpcHub();
 * cluster.on('fork', (worker) => hub.attach(worker));
 * cluster.on('exit', (worker) => hub.detach(worker));
 * ```
 *
 * A worker never receives its own publications (its relay serves its local sessions itself).
 * Deliveries are batched: one IPC message per worker per event-loop turn. What a worker has
 * not read yet is bounded by `maxWorkerBacklog`.
 * @publicApi
 */
export class IpcHub {
  private readonly attached = new Map<IpcChannel, Attached>();
  private readonly subscribers = new Map<string, Set<Attached>>();
  private readonly pending = new Set<Attached>();
  private readonly maxWorkerBacklog: number;
  private readonly logger = new Logger('Riverside');
  private flushScheduled = false;
  private dropped = 0;

  constructor(options: IpcHubOptions = {}) {
    this.maxWorkerBacklog = validateOptions(options).maxWorkerBacklog ?? 64 * 2 ** 20;
  }

  /** How many channels are attached. */
  get size(): number {
    return this.attached.size;
  }

  /** Deliveries dropped because their worker had `maxWorkerBacklog` bytes it had not read. */
  get droppedMessages(): number {
    return this.dropped;
  }

  /** Starts serving the IpcTransport at the other end of `channel` (a `cluster.Worker`). Idempotent. */
  attach(channel: IpcChannel): void {
    if (this.attached.has(channel)) return;
    const state: Attached = new Attached(channel, (message) => this.receive(state, message));
    this.attached.set(channel, state);
    channel.on('message', state.listener);
  }

  /** Forgets `channel` and its subscriptions (call it when the worker exits). Idempotent. */
  detach(channel: IpcChannel): void {
    const state = this.attached.get(channel);
    if (state === undefined) return;
    channel.off('message', state.listener);
    this.forgetTopics(state);
    this.pending.delete(state);
    this.attached.delete(channel);
  }

  /**
   * Publishes from the primary, like an external service would on Redis: `topic` is the full,
   * prefixed topic (`riverside:user:42`), and every subscribed worker receives it.
   */
  publish(topic: string, payload: Uint8Array | string): void {
    this.route(null, topic, typeof payload === 'string' ? Buffer.from(payload) : payload);
  }

  /** The prefixed topics at least one worker subscribes to (for tests and diagnostics). */
  topics(): string[] {
    return [...this.subscribers.keys()];
  }

  private receive(state: Attached, message: unknown): void {
    if (!isIpcHubMessage(message)) return;
    switch (message.riverside) {
      case 'ops': {
        const ops = message.ops;
        let subscribed = false;
        for (let i = 0; i < ops.length; ) {
          const op = ops[i];
          const topic = ops[i + 1];
          if (typeof topic !== 'string') return; // not an IpcTransport's list
          if (op === 'p') {
            this.route(state, topic, ops[i + 2]);
            i += 3;
          } else {
            if (op === 's') {
              this.addSubscriber(topic, state);
              subscribed = true;
            } else if (state.topics.delete(topic)) this.removeSubscriber(topic, state);
            i += 2;
          }
        }
        if (subscribed) sendQuietly(state.channel, { riverside: 'ack', id: message.id });
        return;
      }
      case 'hello':
        // A probe that arrived as bytes: this channel carries them, both ways.
        state.bytes = message.probe instanceof Uint8Array;
        sendQuietly(state.channel, state.bytes ? { riverside: 'ack', id: message.id, probe: bytesProbe() } : { riverside: 'ack', id: message.id });
        return;
      case 'bye':
        this.forgetTopics(state);
        return;
    }
  }

  private route(from: Attached | null, topic: string, payload: string | Uint8Array | undefined): void {
    const set = this.subscribers.get(topic);
    if (set === undefined || payload === undefined) return;
    const size = topic.length + payload.length;
    for (const state of set) {
      if (state === from) continue;
      if (state.backlog + size > this.maxWorkerBacklog) {
        this.drop(state);
        continue;
      }
      state.outbox.push(topic, asChannelPayload(payload, state.bytes));
      state.outboxBytes += size;
      state.backlog += size;
      this.pending.add(state);
    }
    if (!this.flushScheduled && this.pending.size > 0) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    for (const state of this.pending) {
      const batch = state.outbox;
      const bytes = state.outboxBytes;
      state.outbox = [];
      state.outboxBytes = 0;
      // Until the channel has written it, the batch still counts against the worker's backlog.
      const written = (): void => {
        state.backlog -= bytes;
      };
      if (!sendQuietly(state.channel, { riverside: 'msg', batch }, written)) written();
    }
    this.pending.clear();
  };

  private drop(state: Attached): void {
    this.dropped++;
    const heldBack = state.dropLog.take();
    if (heldBack === null) return;
    // A cluster.Worker has its process; a ChildProcess is one.
    const channel = state.channel as { pid?: number; process?: { pid?: number } };
    const pid = channel.process?.pid ?? channel.pid;
    this.logger.warn(
      `IpcHub: dropping deliveries for the worker${pid === undefined ? '' : ` ${pid}`}: it has not read ${state.backlog} bytes ` +
        `(maxWorkerBacklog ${this.maxWorkerBacklog}); ${heldBack + 1} dropped since the last report`,
    );
  }

  private forgetTopics(state: Attached): void {
    for (const topic of state.topics) this.removeSubscriber(topic, state);
    state.topics.clear();
    state.backlog -= state.outboxBytes;
    state.outbox = [];
    state.outboxBytes = 0;
  }

  private addSubscriber(topic: string, state: Attached): void {
    if (state.topics.has(topic)) return;
    state.topics.add(topic);
    let set = this.subscribers.get(topic);
    if (set === undefined) this.subscribers.set(topic, (set = new Set()));
    set.add(state);
  }

  private removeSubscriber(topic: string, state: Attached): void {
    const set = this.subscribers.get(topic);
    if (set?.delete(state) && set.size === 0) this.subscribers.delete(topic);
  }
}

function validateOptions(options: IpcHubOptions): IpcHubOptions {
  const check = new OptionChecks('IpcHub');
  check.knownKeys(options, KNOWN_OPTIONS);
  check.optionalPositiveInteger('maxWorkerBacklog', options.maxWorkerBacklog, 'bytes');
  return options;
}
