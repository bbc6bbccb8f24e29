import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join, runClusterDeliveryContract, twoNodes } from '../cluster/cluster-delivery.contract.js';
import { uniquePrefix } from '../support/brokers.js';
import { NATS_URL, natsAvailable, TrackedNatsTransport } from '../support/nats.js';

// STYLE 18: skipped (loudly) only outside CI when NATS is unreachable; under CI this throws.
const enabled = await natsAvailable();

/** Two nodes on the shared NATS server under a fresh prefix; a node counts as subscribed once subscribe() resolved. */
function natsTransports() {
  const prefix = uniquePrefix('e2e');
  const a = new TrackedNatsTransport({ servers: NATS_URL, prefix });
  const b = new TrackedNatsTransport({ servers: NATS_URL, prefix });
  return { prefix, a, b, subscribers: (topic: string) => [a, b].filter((transport) => transport.subscribed.has(topic)).length };
}

describe.runIf(enabled)('Nest apps in one process on a real NATS server (SPEC 9.1, 9.4)', () => {
  runClusterDeliveryContract('one NATS server', natsTransports);

  describe('external publishers (SPEC 9.4)', () => {
    const cluster = twoNodes(natsTransports);
    let publisher: NatsConnection;
    beforeAll(async () => {
      publisher = await connect({ servers: NATS_URL });
    });
    afterAll(async () => {
      await publisher?.close();
    });

    it('delivers what `nats pub <prefix>.ext.user.42` publishes to user 42 as a text frame, other bytes as binary', async () => {
      const onB = await cluster.nodeB.connect('/', { query: { user: '42' } });
      const other = await cluster.nodeB.connect('/', { query: { user: '43' } });
      await cluster.subscribed('user:42');
      publisher.publish(`${cluster.transports.prefix}.ext.user.42`, '{"hello":1}');
      const frame = await onB.expectFrame();
      expect(frame.isBinary).toBe(false);
      expect(frame.data.toString()).toBe('{"hello":1}');
      publisher.publish(`${cluster.transports.prefix}.ext.user.42`, Uint8Array.from([0xc3, 0x28]));
      const binary = await onB.expectFrame();
      expect(binary.isBinary).toBe(true);
      expect([...binary.data]).toEqual([0xc3, 0x28]);
      await other.expectNoMessage(100);
    });

    it('writes bytes that look like node-to-node commands (FF 01 02 ...) as frames: they never close or info a session', async () => {
      const onB = await cluster.nodeB.connect('/', { query: { user: '44' } });
      await cluster.subscribed('user:44');
      const close = Uint8Array.from([0xff, 0x01, 0x02, 0x00, 0x00, 0x0f, 0xa1]);
      const info = Uint8Array.from([0xff, 0x01, 0x01, 0x00, 0x00, 0x7b, 0x7d]);
      publisher.publish(`${cluster.transports.prefix}.ext.user.44`, close);
      publisher.publish(`${cluster.transports.prefix}.ext.user.44`, info);
      expect([...(await onB.expectFrame()).data]).toEqual([...close]);
      expect([...(await onB.expectFrame()).data]).toEqual([...info]);
      onB.send({ join: 'after' });
      expect(await onB.expectMessage()).toEqual({ joined: 'after' });
    });

    it('reaches a channel whose name needs escaping, through the escaped subject', async () => {
      const member = await cluster.nodeB.connect('/', { query: { user: 'm' } });
      await join(member, 'room.1 *');
      await cluster.subscribed('channel:room.1 *');
      publisher.publish(`${cluster.transports.prefix}.ext.channel.room%2E1%20%2A`, 'escaped');
      expect((await member.expectFrame()).data.toString()).toBe('escaped');
    });
  });
});
