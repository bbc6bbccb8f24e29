import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from 'nestjs-riverside/testing';
import { uniquePrefix } from '../support/brokers.js';
import { NATS_URL, natsAvailable } from '../support/nats.js';
import { type ClusterNodeProcess, startClusterNode } from '../support/node-process.js';
import { eventually } from '../support/riverside-app.js';

// STYLE 18: skipped (loudly) only outside CI when NATS is unreachable; under CI this throws.
const natsUp = await natsAvailable();

// SPEC 9.6: two Nest apps in separate processes, on the built package, on a real NATS server.
describe.runIf(natsUp)('two Riverside processes on one NATS server (SPEC 9.6)', () => {
  const prefix = uniquePrefix('processes');
  const clients: TestClient[] = [];
  let nodes: ClusterNodeProcess[] = [];
  let publisher: NatsConnection | undefined;

  beforeAll(async () => {
    const started = await Promise.allSettled([1, 2].map(() => startClusterNode('nats', { NATS_URL, RIVERSIDE_PREFIX: prefix })));
    nodes = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    for (const result of started) if (result.status === 'rejected') throw result.reason;
    publisher = await connect({ servers: NATS_URL });
  });

  afterAll(async () => {
    for (const client of clients) client.ws.terminate();
    await Promise.all(nodes.map((node) => node.stop()));
    await publisher?.close();
  });

  async function connectTo(node: ClusterNodeProcess, user: string): Promise<TestClient> {
    const client = await TestClient.connect(`${node.url}?user=${user}`);
    clients.push(client);
    return client;
  }

  const subscribed = (node: ClusterNodeProcess, topic: string) => eventually(() => expect(node.subscribed).toContain(topic), 3000);

  it('runs two processes, each on its own port', () => {
    expect(nodes).toHaveLength(2);
    expect(new URL(nodes[0].url).port).not.toBe(new URL(nodes[1].url).port);
  });

  it('delivers to a user connected to the other process, and to nobody else (SPEC 9.1)', async () => {
    const ann = await connectTo(nodes[0], 'ann');
    const bob = await connectTo(nodes[1], 'bob');
    const cid = await connectTo(nodes[1], 'cid');
    await subscribed(nodes[1], 'user:bob');

    ann.send({ deliver: { user: 'bob' }, message: { hi: 'from process 1' } });
    expect(await ann.expectMessage()).toEqual({ delivered: 0 });
    expect(await bob.expectMessage()).toEqual({ hi: 'from process 1' });
    await ann.expectNoMessage(100);
    await cid.expectNoMessage(0);
  });

  it('broadcasts to channel members in both processes, each once, and to nobody else', async () => {
    const members = [await connectTo(nodes[0], 'c1'), await connectTo(nodes[1], 'c2'), await connectTo(nodes[1], 'c3')];
    const outsider = await connectTo(nodes[0], 'c4');
    for (const member of members) {
      member.send({ join: 'room' });
      expect(await member.expectMessage()).toEqual({ joined: 'room' });
    }
    await subscribed(nodes[0], 'channel:room');

    members[1].send({ deliver: { channel: 'room' }, message: { say: 'hi all' } });
    // The sender is a member: its own process writes the broadcast before the handler's reply.
    expect(await members[1].expectMessages(2)).toEqual([{ say: 'hi all' }, { delivered: 2 }]);
    for (const member of [members[0], members[2]]) expect(await member.expectMessage()).toEqual({ say: 'hi all' });
    for (const member of members) await member.expectNoMessage(100);
    await outsider.expectNoMessage(0);
  });

  it('reaches a user in whichever process they are from a plain `nats pub` on the external namespace (SPEC 9.4)', async () => {
    const dee = await connectTo(nodes[1], 'dee');
    await subscribed(nodes[1], 'user:dee');
    publisher!.publish(`${prefix}.ext.user.dee`, '{"hello":1}');
    const frame = await dee.expectFrame();
    expect(frame.isBinary).toBe(false);
    expect(frame.data.toString()).toBe('{"hello":1}');
  });
});
