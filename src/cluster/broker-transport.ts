import { Logger } from '@nestjs/common';
import type { RiversideTransport, TransportMessageHandler } from './transport.interface.js';

/**
 * Topics per SUBSCRIBE / UNSUBSCRIBE command (Redis) or per flushed batch of SUBs (NATS): large
 * enough that 200,000 topics take 200 round trips, small enough that no command, argument list
 * or reply is big (ioredis overflowed its stack on one SUBSCRIBE of ~125,000 channels).
 */
export const TOPIC_CHUNK = 1000;

interface Pending {
  readonly subscribe: boolean;
  readonly topic: string;
  readonly done: (error?: Error) => void;
}

/**
 * What the Redis and NATS transports share: the table of topics this node receives, subscribe
 * and unsubscribe calls of one tick coalesced and sent in order, in chunks of TOPIC_CHUNK (a
 * join storm or a reconnect costs topics / TOPIC_CHUNK commands, not one per topic), the chunked
 * resubscription after a reconnect, and the bound on close().
 *
 * A subclass sends the commands (`sendSubscribe`, `sendUnsubscribe`: resolve once the broker has
 * confirmed them) and says whether the broker can take them now (`canSend`).
 */
export abstract class BrokerTransport implements RiversideTransport {
  /** Topic -> its handler: every topic this node wants to receive. */
  protected readonly topics = new Map<string, TransportMessageHandler>();
  protected externalHandler: TransportMessageHandler | null = null;
  protected readonly logger: Logger;
  private queue: Pending[] = [];
  private flushing = false;

  protected constructor(readonly name: string) {
    this.logger = new Logger(name);
  }

  abstract connect(): Promise<void>;
  abstract publish(topic: string, payload: Uint8Array): Promise<void>;
  abstract close(): Promise<void>;
  abstract subscribeExternal(handler: TransportMessageHandler): Promise<void>;

  /** Whether commands can be sent now; when not, the topic is kept and restored on reconnect. */
  protected abstract canSend(): boolean;
  /** Subscribes to at most TOPIC_CHUNK topics; resolves once the broker confirmed them. */
  protected abstract sendSubscribe(topics: readonly string[]): Promise<void>;
  /** Unsubscribes from at most TOPIC_CHUNK topics. */
  protected abstract sendUnsubscribe(topics: readonly string[]): Promise<void>;
  /** Throws when the transport is not connected. */
  protected abstract assertOpen(action: string, topic: string): void;
  /**
   * Whether a failed subscribe command was refused by the broker for one of its topics (a Redis
   * ACL refuses the whole command for one channel it does not allow), rather than lost with the
   * connection. Then each topic is asked again on its own, so the others are not refused with it.
   */
  protected isRefusal(_error: unknown): boolean {
    return false;
  }

  /**
   * Resolves once the broker has the subscription (with the other subscribes of the same tick,
   * in one command per TOPIC_CHUNK topics). While the broker is unreachable it rejects at once;
   * the topic is kept and subscribed again on reconnect.
   */
  async subscribe(topic: string, handler: TransportMessageHandler): Promise<void> {
    this.assertOpen('subscribe to', topic);
    const known = this.topics.has(topic);
    this.topics.set(topic, handler);
    if (known) return;
    if (!this.canSend()) throw new Error(`${this.name}: the broker is unreachable; subscribing to ${topic} when it is back`);
    return this.enqueue(true, topic);
  }

  /** Stops receiving at once; the UNSUBSCRIBE goes with the others of the same tick. */
  unsubscribe(topic: string): Promise<void> {
    if (!this.topics.delete(topic)) return Promise.resolve();
    // A broker that is down holds no subscription, and the topic is not restored.
    if (!this.canSend()) return Promise.resolve();
    return this.enqueue(false, topic);
  }

  /**
   * Subscribes again to every topic after a reconnect, TOPIC_CHUNK at a time, one chunk after
   * the other: bounded memory and command size whatever the number of topics.
   */
  protected async resubscribeAll(): Promise<number> {
    const topics = [...this.topics.keys()];
    const refused = new Map<string, Error>();
    for (let start = 0; start < topics.length; start += TOPIC_CHUNK) {
      // A topic unsubscribed meanwhile is skipped; one subscribed meanwhile was sent by subscribe().
      const chunk = topics.slice(start, start + TOPIC_CHUNK).filter((topic) => this.topics.has(topic));
      if (chunk.length === 0) continue;
      const failures = await this.subscribeChunk(chunk);
      // Lost with the connection: the next reconnect starts over.
      if (failures.size === chunk.length && !this.canSend()) throw failures.values().next().value!;
      for (const [topic, error] of failures) refused.set(topic, error);
    }
    if (refused.size > 0) {
      const [first, error] = refused.entries().next().value!;
      throw new Error(`${refused.size} topic(s) refused (${first}: ${error.message}); every other topic is subscribed`, { cause: error });
    }
    return topics.length;
  }

  /**
   * Subscribes to a chunk of topics in one command; if the broker refuses the command (see
   * isRefusal), each topic again on its own. Resolves with the error of each topic that failed.
   */
  private async subscribeChunk(topics: readonly string[]): Promise<Map<string, Error>> {
    try {
      await this.sendSubscribe(topics);
      return new Map();
    } catch (error) {
      if (topics.length === 1 || !this.isRefusal(error)) return new Map(topics.map((topic) => [topic, error as Error]));
      const failures = new Map<string, Error>();
      await Promise.all(topics.map((topic) => this.sendSubscribe([topic]).catch((alone: Error) => void failures.set(topic, alone))));
      return failures;
    }
  }

  /** Forgets every topic (close()). Pending subscribe calls settle. */
  protected forgetTopics(): string[] {
    const topics = [...this.topics.keys()];
    this.topics.clear();
    this.externalHandler = null;
    const queue = this.queue;
    this.queue = [];
    for (const pending of queue) pending.done(pending.subscribe ? new Error(`${this.name} was closed`) : undefined);
    return topics;
  }

  /** The handler of a topic this node receives; undefined for one it no longer wants. */
  protected handlerOf(topic: string): TransportMessageHandler | undefined {
    return this.topics.get(topic);
  }

  /** Calls a handler without letting its exception into the client library's read loop. */
  protected dispatch(handler: TransportMessageHandler, payload: Uint8Array, topic: string): void {
    try {
      handler(payload, topic);
    } catch (error) {
      this.logger.error(`${this.name}: handling a message on ${topic} failed: ${(error as Error)?.message ?? error}`);
    }
  }

  private enqueue(subscribe: boolean, topic: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ subscribe, topic, done: (error) => (error ? reject(error) : resolve()) });
      if (!this.flushing) {
        this.flushing = true;
        queueMicrotask(() => this.flush());
      }
    });
  }

  /**
   * Sends the calls queued during one tick, in order (the connection keeps that order), as runs
   * of subscribes and unsubscribes of at most TOPIC_CHUNK topics each.
   */
  private flush(): void {
    this.flushing = false;
    const batch = this.queue;
    this.queue = [];
    let start = 0;
    while (start < batch.length) {
      const subscribe = batch[start].subscribe;
      let end = start;
      while (end < batch.length && batch[end].subscribe === subscribe && end - start < TOPIC_CHUNK) end++;
      const run = batch.slice(start, end);
      const topics = run.map((pending) => pending.topic);
      let sent: Promise<Map<string, Error>>;
      if (!this.canSend()) sent = Promise.reject(new Error(`${this.name}: the broker is unreachable`));
      else if (subscribe) sent = this.subscribeChunk(topics);
      else {
        try {
          sent = this.sendUnsubscribe(topics).then(() => new Map());
        } catch (error) {
          sent = Promise.reject(error);
        }
      }
      sent.then(
        (failures) => run.forEach((pending) => pending.done(failures.get(pending.topic))),
        (error: Error) => run.forEach((pending) => pending.done(error)),
      );
      start = end;
    }
  }
}

/** True when `work` settled within `ms` milliseconds. */
export function within(ms: number, work: Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  return Promise.race([work.then(() => true), timeout]).finally(() => clearTimeout(timer));
}
