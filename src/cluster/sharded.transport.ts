import { randomInt } from 'node:crypto';
import { errorMessage } from '../riverside.messages.js';
import { LocalTransport } from './local.transport.js';
import { OptionChecks } from './option-checks.js';
import { ShardLayoutCheck } from './shard-layout-check.js';
import { BRIDGE_TOPIC, isPresenceTopic } from './topics.js';
import { isTransport, type RiversideTransport, type TransportMessageHandler } from './transport.interface.js';

/**
 * Options of {@link ShardedTransport}.
 * @publicApi
 */
export interface ShardedTransportOptions {
  /**
   * The transports the topics are spread over, one per broker instance (e.g. one
   * `RedisTransport` per Redis server), at least one. Every node of the cluster must list the
   * same brokers in the same order: the position decides which topics a broker carries.
   */
  shards: readonly RiversideTransport[];
}

const KNOWN_OPTIONS = ['shards'] as const;

/**
 * Spreads the cluster's topics over several brokers, so that k Redis servers carry k times
 * what one carries: one Redis runs pub/sub on a single thread, the first limit a large cluster
 * meets (docs/scaling.md, "What breaks first"). Each user or channel topic lives on one shard,
 * chosen by a hash of its name; every node publishes and subscribes it there.
 *
 * ```ts
 * transport: new ShardedTransport({
 *   shards: [new RedisTransport({ url: 'redis://10.0.0.1' }), new RedisTransport({ url: 'redis://10.0.0.2' })],
 * })
 * ```
 *
 * - Order: the messages of one sender to one user or one channel keep their order. A sender's
 *   message to a user and its message to a channel that user is in may arrive in the other
 *   order when the two topics are on different shards (they travel through different servers).
 * - Presence: a node publishes all its presence messages on one shard, picked at random when
 *   it starts (they build on one another, so they keep one path), and listens for presence on
 *   every shard: the presence traffic of a large cluster spreads over the brokers too. When a
 *   presence message cannot be published there (its broker is down), the node's presence moves
 *   to the next shard, so that the other nodes keep hearing its heartbeats.
 * - A node's wildcard subscription to `ext:*` and its `bridge` subscription are held on every
 *   shard: a service publishing from outside may use any one of the brokers.
 * - A shard that is down costs only the topics it carries; each shard's transport reconnects on
 *   its own.
 * - Changing the shards (their number or order) moves most topics: restart every node together.
 *   A node started with another list is found at once: both it and the nodes it disagrees with
 *   log an error naming the shard.
 * @publicApi
 */
export class ShardedTransport implements RiversideTransport {
  /** Set when every shard's `subscribe()` always settles (see `RiversideTransport`). */
  readonly subscriptionsSettle: boolean;
  /** Present when every shard offers it: the `ext:*` subscription is held on every shard. */
  readonly subscribeExternal?: (handler: TransportMessageHandler) => Promise<void>;
  private readonly shards: readonly RiversideTransport[];
  /** Where this node publishes its presence messages (all of them, in order, until it fails). */
  private presenceShard: RiversideTransport;

  constructor(options: ShardedTransportOptions) {
    this.shards = [...validateOptions(options).shards];
    this.subscriptionsSettle = this.shards.every((shard) => shard.subscriptionsSettle === true);
    this.presenceShard = this.shards[randomInt(this.shards.length)];
    if (this.shards.every((shard) => typeof shard.subscribeExternal === 'function')) {
      this.subscribeExternal = async (handler) => {
        await Promise.all(this.shards.map((shard) => shard.subscribeExternal!(handler)));
      };
    }
  }

  /**
   * Connects every shard; if one fails, closes the others and rejects with the shard named. Then
   * checks that the other nodes list the same brokers in the same order (see ShardLayoutCheck):
   * a node that does not is logged as an error, on both sides.
   */
  async connect(): Promise<void> {
    const results = await Promise.allSettled(this.shards.map((shard) => shard.connect()));
    const failed = results.findIndex((result) => result.status === 'rejected');
    if (failed < 0) return new ShardLayoutCheck(this.shards).start();
    await Promise.allSettled(this.shards.map((shard) => shard.close()));
    throw this.shardError(failed, 'could not connect', (results[failed] as PromiseRejectedResult).reason);
  }

  /** Publishes on one shard: the topic's, or this node's presence shard for presence. */
  publish(topic: string, payload: Uint8Array): Promise<void> {
    return isPresenceTopic(topic) ? this.publishPresence(topic, payload) : this.shardOf(topic).publish(topic, payload);
  }

  /**
   * Subscribes on the topic's shard; presence topics and `bridge` on every shard, where other
   * nodes and outside services publish them.
   */
  async subscribe(topic: string, handler: TransportMessageHandler): Promise<void> {
    if (onEveryShard(topic)) await Promise.all(this.shards.map((shard) => shard.subscribe(topic, handler)));
    else await this.shardOf(topic).subscribe(topic, handler);
  }

  /** Unsubscribes where subscribe() subscribed. */
  async unsubscribe(topic: string): Promise<void> {
    if (onEveryShard(topic)) await Promise.all(this.shards.map((shard) => shard.unsubscribe(topic)));
    else await this.shardOf(topic).unsubscribe(topic);
  }

  /** Closes every shard, each whatever the others do; rejects with the first failure. */
  async close(): Promise<void> {
    const results = await Promise.allSettled(this.shards.map((shard) => shard.close()));
    const failed = results.findIndex((result) => result.status === 'rejected');
    if (failed >= 0) throw this.shardError(failed, 'failed to close', (results[failed] as PromiseRejectedResult).reason);
  }

  /**
   * A failed presence message moves the node's presence to the next shard: its next heartbeat
   * leaves from there, and the other nodes, which listen on every shard, catch up on what was
   * lost by the sequence gap (a state transfer), instead of counting the node missing while its
   * broker is down.
   */
  private async publishPresence(topic: string, payload: Uint8Array): Promise<void> {
    const shard = this.presenceShard;
    try {
      await shard.publish(topic, payload);
    } catch (error) {
      if (this.presenceShard === shard) this.presenceShard = this.shards[(this.shards.indexOf(shard) + 1) % this.shards.length];
      throw error;
    }
  }

  /** The shard that carries a user or channel topic, by a hash of its name. */
  private shardOf(topic: string): RiversideTransport {
    return this.shards.length === 1 ? this.shards[0] : this.shards[fnv1a(topic) % this.shards.length];
  }

  private shardError(index: number, what: string, cause: unknown): Error {
    return new Error(`ShardedTransport: shard ${index} of ${this.shards.length} ${what}: ${errorMessage(cause)}`, { cause });
  }
}

/** Topics that every node receives on every shard: each sender publishes them on one shard of its own choosing. */
function onEveryShard(topic: string): boolean {
  return topic === BRIDGE_TOPIC || isPresenceTopic(topic);
}

/**
 * 32-bit FNV-1a over the UTF-16 code units of `text`: fast on short names, spreads them evenly,
 * and gives every node the same answer.
 */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

function validateOptions(options: ShardedTransportOptions): ShardedTransportOptions {
  const check = new OptionChecks('ShardedTransport');
  check.knownKeys(options, KNOWN_OPTIONS, 'an object with shards');
  const { shards } = options;
  if (!Array.isArray(shards) || shards.length === 0) check.invalid('shards', shards, 'a non-empty array of transports (one per broker)');
  shards.forEach((shard, index) => {
    if (!isTransport(shard)) check.invalid(`shards[${index}]`, shard, 'a RiversideTransport (e.g. new RedisTransport({ url }))');
    if (shard instanceof LocalTransport) check.invalid(`shards[${index}]`, shard, 'a transport to a broker: LocalTransport carries nothing between nodes');
    if (shards.indexOf(shard) !== index) check.invalid(`shards[${index}]`, shard, `a transport not listed already (it is shards[${shards.indexOf(shard)}] too)`);
  });
  const external = shards.map((shard) => typeof shard.subscribeExternal === 'function');
  if (external.some((has) => has !== external[0])) {
    check.invalid('shards', shards, 'transports that all offer subscribeExternal, or none of them (a service publishing under ext: must reach every node, whichever shard it uses)');
  }
  return options;
}
