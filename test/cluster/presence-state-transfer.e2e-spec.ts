import { connect as connectNats } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import type { PresenceMembers } from 'nestjs-riverside';
import { TestClient } from 'nestjs-riverside/testing';
import { uniquePrefix } from '../support/brokers.js';
import { NATS_URL, natsAvailable, natsServerAvailable, OwnNatsServer } from '../support/nats.js';
import { type ClusterNodeProcess, startClusterNode } from '../support/node-process.js';
import { REDIS_URL, rawRedis, redisAvailable } from '../support/redis.js';
import { eventually } from '../support/riverside-app.js';

// A node's entries travel to the node that asked for them, on that node's own presence topic,
// not to the whole cluster: a node's start costs the cluster N state transfers, not N². Separate
// Riverside processes (the built package) on a real Redis and a real NATS server.

// STYLE 18: skipped (loudly) only outside CI when a broker is unreachable; under CI this throws.
const [redisUp, natsUp, natsServerUp] = await Promise.all([redisAvailable(), natsAvailable(), natsServerAvailable()]);

/** One message seen on a presence topic: the topic without the prefix (`presence:cluster`, `presence:<node>`) and the message. */
interface Seen {
  readonly topic: string;
  readonly message: { t: string; n: string; ops?: unknown[] };
}

/** A raw client of the broker: sees every presence topic of the prefix, and publishes as a node would. */
interface RawPresenceClient {
  readonly seen: Seen[];
  publish(topic: string, message: Record<string, unknown>): Promise<void>;
  close(): Promise<void>;
}

async function rawRedisClient(prefix: string): Promise<RawPresenceClient> {
  const [subscriber, publisher] = [rawRedis(), rawRedis()];
  await Promise.all([subscriber.connect(), publisher.connect()]);
  const seen: Seen[] = [];
  subscriber.on('pmessage', (_pattern: string, channel: string, message: string) =>
    seen.push({ topic: channel.slice(prefix.length + 1), message: JSON.parse(message) as Seen['message'] }),
  );
  await subscriber.psubscribe(`${prefix}:presence:*`);
  return {
    seen,
    publish: async (topic, message) => void (await publisher.publish(`${prefix}:${topic}`, JSON.stringify(message))),
    close: async () => {
      subscriber.disconnect();
      publisher.disconnect();
    },
  };
}

async function rawNatsClient(prefix: string): Promise<RawPresenceClient> {
  const nats = await connectNats({ servers: NATS_URL, timeout: 2000, reconnect: false });
  const seen: Seen[] = [];
  nats.subscribe(`${prefix}.presence.*`, {
    callback: (_error, message) =>
      void seen.push({ topic: message.subject.slice(prefix.length + 1).replace('.', ':'), message: message.json<Seen['message']>() }),
  });
  await nats.flush();
  return {
    seen,
    publish: async (topic, message) => {
      nats.publish(`${prefix}.${topic.replace(':', '.')}`, JSON.stringify(message));
      await nats.flush();
    },
    close: () => nats.close(),
  };
}

/** The node processes and clients a test started: stopped after it. */
class Started {
  readonly nodes: ClusterNodeProcess[] = [];
  readonly clients: TestClient[] = [];

  async stop(): Promise<void> {
    for (const client of this.clients.splice(0)) client.ws.terminate();
    await Promise.all(this.nodes.splice(0).map((node) => node.stop()));
  }
}

function stateTransferSuite(broker: 'redis' | 'nats', up: boolean, brokerEnv: Record<string, string>, rawClient: (prefix: string) => Promise<RawPresenceClient>): void {
  describe.runIf(up)(`presence state transfers between Riverside processes on ${broker}`, () => {
    const started = new Started();
    let raw: RawPresenceClient | null = null;
    let prefix = '';
    afterEach(async () => {
      await started.stop();
      await raw?.close();
      raw = null;
    });

    // The default presenceHeartbeat (1 s): a state request unanswered for 2 heartbeats is asked
    // again on the shared topic, and 2 s keeps a loaded machine from doing that here.
    async function startNode(): Promise<{ process: ClusterNodeProcess; id: string }> {
      const process = await startClusterNode(broker, { ...brokerEnv, RIVERSIDE_PREFIX: prefix }, 20_000);
      started.nodes.push(process);
      return { process, id: String(process.output.find((line) => typeof line.url === 'string')!.node) };
    }

    async function connect(node: ClusterNodeProcess, userId: string): Promise<TestClient> {
      const client = await TestClient.connect(`${node.url}?user=${userId}&sid=${userId}-s`, { timeout: 5000 });
      started.clients.push(client);
      return client;
    }

    async function ask<T>(client: TestClient, question: Record<string, unknown>): Promise<T> {
      client.send(question);
      return (await client.expectMessage()) as T;
    }

    /** Two nodes with a member of `room` each (ann on the first, bob on the second), seen by the raw client from the start. */
    async function twoNodesWithMembers() {
      prefix = uniquePrefix(`presence-state-${broker}`);
      raw = await rawClient(prefix);
      const [first, second] = [await startNode(), await startNode()];
      for (const [node, user] of [[first, 'ann'], [second, 'bob']] as const) {
        expect(await ask(await connect(node.process, user), { join: 'room' })).toEqual({ joined: 'room' });
      }
      return [first, second] as const;
    }

    const states = (from: string) => raw!.seen.filter(({ message }) => message.t === 'state' && message.n === from);

    it("sends a starting node the others' entries on that node's own topic; the shared presence topic carries no state", async () => {
      const [first, second] = await twoNodesWithMembers();
      const third = await startNode();
      const probe = await connect(third.process, 'probe');

      const { members } = await ask<{ members: PresenceMembers }>(probe, { members: 'room' });
      expect(members.complete).toBe(true);
      expect(members.members.map(({ userId, node }) => [userId, node]).sort()).toEqual([
        ['ann', first.id],
        ['bob', second.id],
      ]);
      // Each node's state reached the third node on its topic, and went nowhere else.
      for (const { id } of [first, second]) {
        expect(states(id).map(({ topic }) => topic)).toContain(`presence:${third.id}`);
        expect(states(id).filter(({ topic }) => topic === 'presence:cluster')).toEqual([]);
      }
    });

    it('answers a node that does not name a topic of its own (an earlier version) on the shared presence topic', async () => {
      const [first, second] = await twoNodesWithMembers();
      await eventually(() => expect(states(first.id).length + states(second.id).length).toBeGreaterThan(0));
      const before = raw!.seen.length;

      await raw!.publish('presence:cluster', { p: 1, t: 'hello', n: '00000000legacy00' });
      await eventually(() => {
        const answers = raw!.seen.slice(before).filter(({ message }) => message.t === 'state');
        expect(answers.map(({ topic, message }) => [topic, message.n]).sort()).toEqual(
          [['presence:cluster', first.id], ['presence:cluster', second.id]].sort(),
        );
        expect(answers.flatMap(({ message }) => message.ops)).toEqual(
          expect.arrayContaining([
            ['m+', 'room', 'ann', 'ann-s'],
            ['m+', 'room', 'bob', 'bob-s'],
          ]),
        );
      });
    });
  });
}

/**
 * A first node with ann in `room`, then a second node and a probe session on it. ann joined
 * before the second node started: only the first node's state can tell the second of her.
 */
async function annBeforeSecondNode(broker: 'redis' | 'nats', env: Record<string, string>, started: Started) {
  const first = await startClusterNode(broker, env, 20_000);
  started.nodes.push(first);
  const ann = await TestClient.connect(`${first.url}?user=ann`, { timeout: 5000 });
  started.clients.push(ann);
  ann.send({ join: 'room' });
  expect(await ann.expectMessage()).toEqual({ joined: 'room' });
  const second = await startClusterNode(broker, env, 20_000);
  started.nodes.push(second);
  const probe = await TestClient.connect(`${second.url}?user=probe`, { timeout: 5000 });
  started.clients.push(probe);
  return { second, probe };
}

/** What the probe's node answers for `members('room')`: complete, and whose. */
async function roomAsSeenBy(probe: TestClient): Promise<{ complete: boolean; userIds: string[] }> {
  probe.send({ members: 'room' });
  const { members } = (await probe.expectMessage()) as { members: PresenceMembers };
  return { complete: members.complete, userIds: members.members.map(({ userId }) => userId) };
}

describe.runIf(redisUp)("presence state transfers with a Redis user refused the nodes' own presence topics", () => {
  const started = new Started();
  const prefix = uniquePrefix('presence-acl');
  const user = `${prefix}-user`;
  const admin = rawRedis();
  afterEach(async () => {
    await started.stop();
    await admin.call('ACL', 'DELUSER', user);
    admin.disconnect();
  });

  it('still gets the entries of a node started before it, on the shared topic', async () => {
    await admin.connect();
    // Every channel a node uses but presence:<node>.
    const channels = ['presence:cluster', 'user:*', 'channel:*', 'ext:*', 'publish-check'].map((channel) => `&${prefix}:${channel}`);
    await admin.call('ACL', 'SETUSER', user, 'on', '>secret', '~*', ...channels, '+@all');
    const env = { REDIS_URL: REDIS_URL.replace('redis://', `redis://${user}:secret@`), RIVERSIDE_PREFIX: prefix };
    const { second, probe } = await annBeforeSecondNode('redis', env, started);

    expect(await roomAsSeenBy(probe)).toEqual({ complete: true, userIds: ['ann'] });
    // The refusal is logged, naming the topic.
    expect(second.stderr()).toMatch(/subscribing to presence:[0-9a-f]{16} \(states for this node will come on presence:cluster\): NOPERM/);
  });
});

describe.runIf(natsServerUp)("presence state transfers with a NATS user that may not subscribe to the nodes' own presence subjects", () => {
  const started = new Started();
  let server: OwnNatsServer | null = null;
  afterEach(async () => {
    await started.stop();
    await server?.kill();
  });

  it('still gets the entries of a node started before it (NATS refuses the subscription only after it was made)', async () => {
    const prefix = uniquePrefix('presence-nats-perm').replace(/[^A-Za-z0-9_-]/g, '_');
    // Every subject a node subscribes to but <prefix>.presence.<node>.
    const subscribe = ['presence.cluster', 'user.>', 'channel.>', 'session.>', 'ext.>', 'bridge'].map((subject) => `"${prefix}.${subject}"`);
    server = await OwnNatsServer.start(
      // A client without credentials is the user `node`, with those permissions.
      `no_auth_user: node\nauthorization { users = [ { user: node, password: secret, permissions: { publish: ">", subscribe: [${subscribe.join(', ')}, "_INBOX.>"] } } ] }`,
    );
    const { probe } = await annBeforeSecondNode('nats', { NATS_URL: server.url, RIVERSIDE_PREFIX: prefix, PRESENCE_HEARTBEAT: '200' }, started);

    // The second node's own subject delivers nothing: after 2 heartbeats it asks on the shared one.
    await eventually(async () => expect(await roomAsSeenBy(probe)).toEqual({ complete: true, userIds: ['ann'] }), 5000);
  });
});

stateTransferSuite('redis', redisUp, { REDIS_URL }, rawRedisClient);
stateTransferSuite('nats', natsUp, { NATS_URL }, rawNatsClient);
