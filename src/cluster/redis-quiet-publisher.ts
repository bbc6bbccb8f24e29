import type { Logger } from '@nestjs/common';
import { type RedisClientLike, serverOf } from './redis-transport.options.js';

/** What RedisTransport needs of a publisher connection it created itself (an ioredis client). */
export interface OwnRedisPublisher extends RedisClientLike {
  readonly stream: PublisherSocket;
  call(command: string, ...args: (string | Buffer)[]): Promise<unknown>;
}

interface PublisherSocket {
  cork?(): void;
  uncork?(): void;
  readonly destroyed: boolean;
  readonly writable: boolean;
  write(chunk: string | Uint8Array): boolean;
}

const PUBLISH_HEADER = '*3\r\n$7\r\nPUBLISH\r\n$';
const CRLF = Buffer.from('\r\n');

const noop = (): void => {};

/**
 * PUBLISH without a reply to read, on the publisher connection RedisTransport owns.
 *
 * Redis answers every PUBLISH with the number of subscribers it reached, a number nobody here
 * reads. On a publisher that sends a few messages per event-loop turn, reading that answer is one
 * more socket wake-up per publish: a third to a half of the publishing process' CPU per publish
 * (bench/tail/redis-quiet-cost.mjs). Once a connection is ready, `CLIENT REPLY OFF` tells Redis not to
 * answer anything on it, and publishes are written to the socket directly (ioredis would wait
 * for answers that never come).
 *
 * What is given up is nothing publish() used. A PUBLISH that reaches Redis fails only for want
 * of a permission (ACL), and the switch is made only after Redis has accepted `CLIENT REPLY`
 * and a PUBLISH under the prefix on that connection; a Redis user refused either keeps the
 * answered publishes (each refusal counted, as before), said once in the log. A connection that
 * is not ready still fails publish() at once. A publish written just before the connection
 * drops is lost as it was before, now without being counted.
 *
 * Each connection ioredis opens starts answering again; {@link engage} runs on every 'ready'.
 */
export class QuietPublisher {
  /** The publisher's socket on which Redis no longer answers, or null. */
  private quietSocket: PublisherSocket | null = null;
  private refusalLogged = false;

  /** @param checkChannel a channel under the transport's prefix that no node subscribes to */
  constructor(
    private readonly logger: Logger,
    private readonly checkChannel: string,
  ) {}

  /**
   * Asks Redis for no more replies on the client's current connection. `CLIENT REPLY ON` and
   * a PUBLISH on the check channel first, which Redis answers: they tell whether the user may
   * run `CLIENT REPLY` and publish under the prefix, without leaving ioredis waiting for an
   * answer to a refused OFF.
   */
  engage(client: OwnRedisPublisher): void {
    const socket = client.stream;
    Promise.all([client.call('CLIENT', 'REPLY', 'ON'), client.call('PUBLISH', this.checkChannel, '')]).then(
      () => {
        if (client.stream !== socket || client.status !== 'ready') return;
        // Never answered: ioredis keeps it pending until this connection closes.
        client.call('CLIENT', 'REPLY', 'OFF').catch(noop);
        this.quietSocket = socket;
      },
      (error: Error) => {
        if (this.refusalLogged || client.stream !== socket) return;
        this.refusalLogged = true;
        this.logger.log(
          `RedisTransport: Redis refused CLIENT REPLY or a PUBLISH on ${this.checkChannel} (${error.message}); ` +
            "each publish waits for Redis' answer. Allow the Redis user 'client|reply' and the channels under the " +
            'prefix to spare the publisher one read per message.',
        );
      },
    );
  }

  /** Whether the client's current connection no longer gets replies (only ever one {@link engage}d). */
  isQuiet(client: RedisClientLike): client is OwnRedisPublisher {
    return this.quietSocket !== null && client.stream === this.quietSocket;
  }

  /**
   * Writes `PUBLISH channel payload` to a quiet connection. Corked by the caller for the turn,
   * the three pieces leave in one write with the turn's other publishes.
   */
  publish(client: OwnRedisPublisher, channel: string, payload: Buffer): void {
    const socket = client.stream;
    if (socket.destroyed || !socket.writable) throw new Error(`Redis publisher connection to ${serverOf(client)} is closing, not ready`);
    socket.write(`${PUBLISH_HEADER}${Buffer.byteLength(channel)}\r\n${channel}\r\n$${payload.length}\r\n`);
    socket.write(payload);
    socket.write(CRLF);
  }

  forget(): void {
    this.quietSocket = null;
  }
}
