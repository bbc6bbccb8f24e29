import type { RiversideTransport, TransportMessageHandler } from '../cluster/transport.interface.js';

/**
 * An in-process broker: several Nest apps in one test process, each with a
 * `MemoryBusTransport` on the same bus, behave like nodes of a cluster.
 * @publicApi
 */
export class MemoryBus {
  private readonly subscribers = new Map<string, Set<MemoryBusTransport>>();
  /** Transports listening on `<prefix>:ext:*`. */
  private readonly external = new Set<MemoryBusTransport>();

  /**
   * Publishes like another service would (`redis-cli PUBLISH <topic> <payload>`): external
   * services use `<prefix>:ext:user:42`, `<prefix>:ext:channel:room`...
   */
  publish(topic: string, payload: Uint8Array | string): void {
    const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
    for (const transport of this.subscribers.get(topic) ?? []) transport.receive(topic, bytes);
    for (const transport of this.external) {
      if (topic.startsWith(`${transport.prefix}:ext:`)) transport.receiveExternal(topic.slice(transport.prefix.length + 5), bytes);
    }
  }

  /** @internal */
  listenExternal(transport: MemoryBusTransport, listening: boolean): void {
    if (listening) this.external.add(transport);
    else this.external.delete(transport);
  }

  /** @internal */
  subscribe(topic: string, transport: MemoryBusTransport): void {
    let set = this.subscribers.get(topic);
    if (!set) this.subscribers.set(topic, (set = new Set()));
    set.add(transport);
  }

  /** @internal */
  unsubscribe(topic: string, transport: MemoryBusTransport): void {
    const set = this.subscribers.get(topic);
    if (set?.delete(transport) && set.size === 0) this.subscribers.delete(topic);
  }
}

/**
 * A `RiversideTransport` over a {@link MemoryBus}: delivery is asynchronous, as over a network,
 * and a node receives its own publications too, as with Redis pub/sub.
 * @publicApi
 */
export class MemoryBusTransport implements RiversideTransport {
  private readonly handlers = new Map<string, TransportMessageHandler>();
  private externalHandler: TransportMessageHandler | null = null;
  private closed = false;

  constructor(
    readonly bus: MemoryBus,
    /** Put in front of every topic: `<prefix>:user:42`. */
    readonly prefix = 'riverside',
  ) {}

  /** The unprefixed topics this node is subscribed to. */
  get topics(): string[] {
    return [...this.handlers.keys()];
  }

  async connect(): Promise<void> {
    this.closed = false;
  }

  async publish(topic: string, payload: Uint8Array): Promise<void> {
    if (this.closed) throw new Error('MemoryBusTransport is closed');
    // A copy, so that no receiver shares memory with the sender (as over a network).
    const copy = Buffer.from(payload);
    setImmediate(() => this.bus.publish(`${this.prefix}:${topic}`, copy));
  }

  async subscribe(topic: string, handler: TransportMessageHandler): Promise<void> {
    this.handlers.set(topic, handler);
    this.bus.subscribe(`${this.prefix}:${topic}`, this);
  }

  async unsubscribe(topic: string): Promise<void> {
    this.handlers.delete(topic);
    this.bus.unsubscribe(`${this.prefix}:${topic}`, this);
  }

  /** Receives `<prefix>:ext:*`, as RedisTransport does. */
  async subscribeExternal(handler: TransportMessageHandler): Promise<void> {
    this.externalHandler = handler;
    this.bus.listenExternal(this, true);
  }

  async close(): Promise<void> {
    this.bus.listenExternal(this, false);
    this.externalHandler = null;
    for (const topic of this.handlers.keys()) this.bus.unsubscribe(`${this.prefix}:${topic}`, this);
    this.handlers.clear();
    this.closed = true;
  }

  /** @internal */
  receive(prefixedTopic: string, payload: Uint8Array): void {
    const topic = prefixedTopic.slice(this.prefix.length + 1);
    this.handlers.get(topic)?.(payload, topic);
  }

  /** @internal */
  receiveExternal(topic: string, payload: Uint8Array): void {
    this.externalHandler?.(payload, topic);
  }
}
