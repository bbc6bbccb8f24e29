import { type IpcChannel, isIpcHubMessage, sendQuietly } from './ipc-channel.js';

/** What the hub knows of one attached worker. */
class Attached {
  readonly topics = new Set<string>();
  /** `[topic, payload, ...]` waiting for the end of this turn. */
  outbox: string[] = [];

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
 * Deliveries are batched: one IPC message per worker per event-loop turn.
 * @publicApi
 */
export class IpcHub {
  private readonly attached = new Map<IpcChannel, Attached>();
  private readonly subscribers = new Map<string, Set<Attached>>();
  private readonly pending = new Set<Attached>();
  private flushScheduled = false;

  /** How many channels are attached. */
  get size(): number {
    return this.attached.size;
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
    const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
    this.route(null, topic, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'));
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
          if (op === 'p') {
            this.route(state, ops[i + 1], ops[i + 2]);
            i += 3;
          } else {
            if (op === 's') {
              this.addSubscriber(ops[i + 1], state);
              subscribed = true;
            } else if (state.topics.delete(ops[i + 1])) this.removeSubscriber(ops[i + 1], state);
            i += 2;
          }
        }
        if (subscribed) sendQuietly(state.channel, { riverside: 'ack', id: message.id });
        return;
      }
      case 'hello':
        sendQuietly(state.channel, { riverside: 'ack', id: message.id });
        return;
      case 'bye':
        this.forgetTopics(state);
        return;
    }
  }

  private route(from: Attached | null, topic: string, payload: string): void {
    const set = this.subscribers.get(topic);
    if (set === undefined) return;
    for (const state of set) {
      if (state === from) continue;
      state.outbox.push(topic, payload);
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
      state.outbox = [];
      sendQuietly(state.channel, { riverside: 'msg', batch });
    }
    this.pending.clear();
  };

  private forgetTopics(state: Attached): void {
    for (const topic of state.topics) this.removeSubscriber(topic, state);
    state.topics.clear();
    state.outbox = [];
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
