import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RiversideTransport } from 'nestjs-riverside';

/** Two nodes' transports on one broker, and a way to publish as an external service. */
export interface TransportPair {
  readonly a: RiversideTransport;
  readonly b: RiversideTransport;
  /** Another node on the same broker but a different prefix. */
  readonly otherPrefix: RiversideTransport;
  cleanup(): Promise<void>;
}

/** Waits for the next payload a handler receives, or fails after `timeout` ms. */
function inbox() {
  const received: Buffer[] = [];
  const waiters: ((payload: Buffer) => void)[] = [];
  return {
    received,
    handler: (payload: Uint8Array) => {
      const copy = Buffer.from(payload);
      const waiter = waiters.shift();
      if (waiter) waiter(copy);
      else received.push(copy);
    },
    next(timeout = 2000): Promise<Buffer> {
      const queued = received.shift();
      if (queued) return Promise.resolve(queued);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no payload within ${timeout} ms`)), timeout);
        waiters.push((payload) => {
          clearTimeout(timer);
          resolve(payload);
        });
      });
    },
  };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

/**
 * The behaviour every RiversideTransport must have (STYLE 18): run it against the in-process
 * bus, Redis and NATS alike.
 */
export function runTransportContract(name: string, createPair: () => Promise<TransportPair>): void {
  describe(`${name} (transport contract)`, () => {
    let pair: TransportPair;
    beforeEach(async () => {
      pair = await createPair();
      await Promise.all([pair.a.connect(), pair.b.connect(), pair.otherPrefix.connect()]);
    });
    afterEach(() => pair.cleanup());

    it('delivers a payload published on one node to a subscriber on another, byte for byte', async () => {
      const box = inbox();
      await pair.b.subscribe('user:42', box.handler);
      const payload = Buffer.from([0xff, 0x00, 0x01, 0x80, 0x7f]);
      await pair.a.publish('user:42', payload);
      expect([...(await box.next())]).toEqual([...payload]);
    });

    it('keeps topics apart, even when one name is a prefix of another', async () => {
      const one = inbox();
      const ten = inbox();
      await pair.b.subscribe('user:1', one.handler);
      await pair.b.subscribe('user:10', ten.handler);
      await pair.a.publish('user:10', Buffer.from('ten'));
      expect((await ten.next()).toString()).toBe('ten');
      await settle();
      expect(one.received).toHaveLength(0);
    });

    it('stops delivering a topic after unsubscribe', async () => {
      const box = inbox();
      await pair.b.subscribe('channel:room', box.handler);
      await pair.a.publish('channel:room', Buffer.from('first'));
      expect((await box.next()).toString()).toBe('first');
      await pair.b.unsubscribe('channel:room');
      await pair.a.publish('channel:room', Buffer.from('second'));
      await settle();
      expect(box.received).toHaveLength(0);
    });

    it('isolates deployments that use different prefixes on one broker', async () => {
      const box = inbox();
      await pair.otherPrefix.subscribe('user:42', box.handler);
      await pair.a.publish('user:42', Buffer.from('not for you'));
      await settle();
      expect(box.received).toHaveLength(0);
    });

    it('keeps the order of payloads published by one node on one topic', async () => {
      const box = inbox();
      await pair.b.subscribe('session:42/abc', box.handler);
      for (let i = 0; i < 20; i++) await pair.a.publish('session:42/abc', Buffer.from(String(i)));
      const seen: string[] = [];
      for (let i = 0; i < 20; i++) seen.push((await box.next()).toString());
      expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
    });
  });
}
