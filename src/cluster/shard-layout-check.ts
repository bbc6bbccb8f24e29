import { Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { errorMessage } from '../riverside.messages.js';
import { LogThrottle } from './log-throttle.js';
import { SHARD_LAYOUT_TOPIC } from './topics.js';
import type { RiversideTransport } from './transport.interface.js';

/** What a node publishes on each of its shards: the place of that broker in its list. */
interface LayoutNotice {
  /** The shard this broker is in the sender's list. */
  s: number;
  /** How many shards the sender lists. */
  n: number;
  /** The sender, `host/pid/tag`: the tag tells a node's own notices from the others'. */
  node: string;
  /** Set on an answer to a notice that disagreed; an answer is never answered. */
  a?: 1;
}

/**
 * Finds the nodes of a cluster that list the brokers of their ShardedTransport differently (in
 * another order, or not the same number): they would publish topics on brokers where the others
 * do not listen for them, and lose those deliveries without a word. At connect, a node
 * subscribes to {@link SHARD_LAYOUT_TOPIC} on every shard and says on each which shard it takes
 * that broker for. A node that hears a notice disagreeing with its own list logs an error and
 * answers on that broker, so that the node that just started logs it too. While the nodes
 * agree, a node's start costs one small message per shard and nothing is answered.
 */
export class ShardLayoutCheck {
  private readonly node = `${hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`;
  private readonly logger = new Logger('Riverside');
  private readonly errors = new LogThrottle();

  constructor(private readonly shards: readonly RiversideTransport[]) {}

  /** Listens on every shard, then tells each what it is here. A broker that refuses the topic only costs the check. */
  async start(): Promise<void> {
    const subscribed = await Promise.allSettled(this.shards.map((shard, index) => shard.subscribe(SHARD_LAYOUT_TOPIC, (payload) => this.receive(index, payload))));
    subscribed.forEach((result, index) => {
      if (result.status === 'fulfilled') return;
      this.logger.warn(
        `ShardedTransport: cannot check that every node lists shard ${index} in the same place: subscribing to ${SHARD_LAYOUT_TOPIC} failed: ${errorMessage(result.reason)}`,
      );
    });
    this.shards.forEach((_, index) => this.tell(index, false));
  }

  private tell(index: number, answer: boolean): void {
    const notice: LayoutNotice = { s: index, n: this.shards.length, node: this.node };
    if (answer) notice.a = 1;
    this.shards[index].publish(SHARD_LAYOUT_TOPIC, Buffer.from(JSON.stringify(notice))).catch(() => {
      // The broker is down: the nodes check again whenever one starts.
    });
  }

  private receive(index: number, payload: Uint8Array): void {
    const notice = parseNotice(payload);
    if (notice === null || notice.node === this.node) return;
    if (notice.s === index && notice.n === this.shards.length) return;
    const heldBack = this.errors.take();
    if (heldBack !== null) {
      this.logger.error(
        `ShardedTransport: node ${notice.node} lists ${notice.n} shard(s) and takes the broker that is shard ${index} of ` +
          `${this.shards.length} on this node (${this.node}) for its shard ${notice.s}: deliveries between the two are lost. ` +
          `Give every node the same brokers in the same order.${heldBack > 0 ? ` (${heldBack} more such notice(s) since the last report)` : ''}`,
      );
    }
    if (notice.a !== 1) this.tell(index, true);
  }
}

/** A notice as another node sends it, or null for anything else published on the topic. */
function parseNotice(payload: Uint8Array): LayoutNotice | null {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString());
  } catch {
    return null;
  }
  const notice = value as Partial<LayoutNotice> | null;
  if (typeof notice !== 'object' || notice === null) return null;
  if (!Number.isInteger(notice.s) || !Number.isInteger(notice.n) || typeof notice.node !== 'string' || notice.node.length > 300) return null;
  return notice as LayoutNotice;
}
