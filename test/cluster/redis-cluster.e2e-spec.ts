import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from 'nestjs-riverside/testing';
import { uniquePrefix } from '../support/brokers.js';
import { type ClusterNodeProcess, startClusterNode } from '../support/node-process.js';
import { REDIS_URL, rawRedis, redisAvailable, subscriberCount } from '../support/redis.js';
import { eventually } from '../support/riverside-app.js';

// STYLE 18: skipped (loudly) only outside CI when Redis is unreachable; under CI this throws.
const redisUp = await redisAvailable();

// SPEC 9.6: two Nest apps in separate processes, on the built package, on a real Redis.
describe.runIf(redisUp)('two Riverside processes on one Redis (SPEC 9.6)', () => {
  const prefix = uniquePrefix('processes');
  const clients: TestClient[] = [];
  let nodes: ClusterNodeProcess[] = [];
  let observer: Redis;

  beforeAll(async () => {
    observer = rawRedis();
    await observer.connect();
    nodes = await Promise.all([1, 2].map(() => startClusterNode('redis', { REDIS_URL, RIVERSIDE_PREFIX: prefix })));
  });

  afterAll(async () => {
    for (const client of clients) client.ws.terminate();
    await Promise.all(nodes.map((node) => node.stop()));
    observer?.disconnect();
  });

  async function connect(node: ClusterNodeProcess, user: string): Promise<TestClient> {
    const client = await TestClient.connect(`${node.url}?user=${user}`);
    clients.push(client);
    return client;
  }

  const subscribed = (topic: string, count: number) =>
    eventually(async () => expect(await subscriberCount(observer, `${prefix}:${topic}`)).toBe(count));

  it('runs two processes, each on its own port', () => {
    expect(nodes).toHaveLength(2);
    expect(new URL(nodes[0].url).port).not.toBe(new URL(nodes[1].url).port);
  });

  it('delivers to a user connected to the other process (SPEC 9.1)', async () => {
    const ann = await connect(nodes[0], 'ann');
    const bob = await connect(nodes[1], 'bob');
    await subscribed('user:bob', 1);

    ann.send({ deliver: { user: 'bob' }, message: { hi: 'from process 1' } });
    expect(await ann.expectMessage()).toEqual({ delivered: 0 });
    expect(await bob.expectMessage()).toEqual({ hi: 'from process 1' });
    await ann.expectNoMessage(100);
  });

  it('broadcasts to channel members in both processes, each once, and to nobody else', async () => {
    const members = [await connect(nodes[0], 'c1'), await connect(nodes[1], 'c2'), await connect(nodes[1], 'c3')];
    const outsider = await connect(nodes[0], 'c4');
    for (const member of members) {
      member.send({ join: 'room' });
      expect(await member.expectMessage()).toEqual({ joined: 'room' });
    }
    await subscribed('channel:room', 2);

    const [sender, ...others] = [members[1], members[0], members[2]];
    sender.send({ deliver: { channel: 'room' }, message: { say: 'hi all' } });
    // The sender is a member: the broadcast is written before the handler's reply.
    expect(await sender.expectMessages(2)).toEqual([{ say: 'hi all' }, { delivered: 2 }]);
    for (const member of others) expect(await member.expectMessage()).toEqual({ say: 'hi all' });
    for (const member of members) await member.expectNoMessage(100);
    await outsider.expectNoMessage(0);
  });

  it('reaches a user in whichever process they are from a plain Redis PUBLISH on the external namespace (SPEC 9.4)', async () => {
    const dee = await connect(nodes[1], 'dee');
    await subscribed('user:dee', 1);
    // Every node listens on <prefix>:ext:* (one PSUBSCRIBE each); only dee's node has dee.
    expect(await observer.publish(`${prefix}:ext:user:dee`, '{"hello":1}')).toBe(2);
    const frame = await dee.expectFrame();
    expect(frame.isBinary).toBe(false);
    expect(frame.data.toString()).toBe('{"hello":1}');
  });

  it('stops a process on SIGTERM, closing its sessions with 1001 and leaving Redis (SPEC 14.1)', async () => {
    const eve = await connect(nodes[1], 'eve');
    await subscribed('user:eve', 1);
    const exit = await nodes[1].stop(5000);
    expect(exit).toEqual({ code: 0, signal: null, forced: false });
    expect((await eve.expectClose()).code).toBe(1001);
    await subscribed('user:eve', 0);
    expect(nodes[1].stderr()).not.toMatch(/ERROR/);
  });
});
