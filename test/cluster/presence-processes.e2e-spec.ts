import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PresenceEvent, PresenceMember, PresenceMembers } from 'nestjs-riverside';
import { TestClient } from 'nestjs-riverside/testing';
import { uniquePrefix } from '../support/brokers.js';
import { NATS_URL, natsAvailable } from '../support/nats.js';
import { type ClusterNodeProcess, startClusterNode } from '../support/node-process.js';
import { REDIS_URL, redisAvailable } from '../support/redis.js';
import { eventually } from '../support/riverside-app.js';

// SPEC 9.3 / 16.4: cluster-wide presence, three Riverside processes (the built package) on a real
// Redis and a real NATS server. Fast heartbeats keep the suite short; the bounds scale with them.
const HEARTBEAT = 200;
const TIMEOUT = 3000;
/** A dead node is removed within presenceTimeout + presenceHeartbeat; the rest is slack for a loaded CI machine. */
const REMOVAL_BOUND = TIMEOUT + HEARTBEAT + 1500;
/** How long the churn test churns; `npm run soak:presence` runs it for 20 s. */
const CHURN_MS = Number(process.env.PRESENCE_CHURN_MS ?? 5000);

// STYLE 18: skipped (loudly) only outside CI when a broker is unreachable; under CI this throws.
const [redisUp, natsUp] = await Promise.all([redisAvailable(), natsAvailable()]);

interface PresenceNode {
  readonly process: ClusterNodeProcess;
  readonly id: string;
  /** A session on this node that asks it presence questions (user `probe-<n>`). */
  readonly probe: TestClient;
}

function presenceEvents(nodes: readonly PresenceNode[]): PresenceEvent[] {
  return nodes.flatMap((node) => node.process.output.flatMap((line) => (line.presence ? [line.presence as PresenceEvent] : [])));
}

const byMember = (a: { userId: string; sessionId: string }, b: { userId: string; sessionId: string }) =>
  a.userId.localeCompare(b.userId) || a.sessionId.localeCompare(b.sessionId);

function presenceSuite(broker: 'redis' | 'nats', up: boolean, brokerEnv: Record<string, string>): void {
  describe.runIf(up)(`presence across three Riverside processes on ${broker} (SPEC 9.3)`, () => {
    // One cluster for the whole describe (starting processes is the slow part); each test uses its
    // own channels and users, and the SIGKILL test, which replaces a node, comes last.
    const prefix = uniquePrefix(`presence-${broker}`);
    let nodes: PresenceNode[] = [];
    const clients: TestClient[] = [];
    let probes = 0;

    beforeAll(async () => {
      nodes = await Promise.all(Array.from({ length: 3 }, () => startNode()));
    }, 40_000);

    afterAll(async () => {
      for (const client of clients) client.ws.terminate();
      for (const node of nodes) node.process.child.kill('SIGCONT');
      await Promise.all(nodes.map((node) => node.process.stop()));
    });

    async function startNode(): Promise<PresenceNode> {
      const process = await startClusterNode(broker, {
        ...brokerEnv,
        RIVERSIDE_PREFIX: prefix,
        PRESENCE_HEARTBEAT: String(HEARTBEAT),
        PRESENCE_TIMEOUT: String(TIMEOUT),
      }, 20_000);
      const probe = await TestClient.connect(`${process.url}?user=probe-${probes++}`, { timeout: 5000 });
      clients.push(probe);
      return { process, id: String(process.output.find((line) => typeof line.url === 'string')!.node), probe };
    }

    async function connect(node: PresenceNode, userId: string, sessionId: string): Promise<TestClient> {
      const client = await TestClient.connect(`${node.process.url}?user=${userId}&sid=${sessionId}`, { timeout: 5000 });
      clients.push(client);
      return client;
    }

    async function ask<T>(node: PresenceNode, question: Record<string, unknown>): Promise<T> {
      node.probe.send(question);
      return (await node.probe.expectMessage()) as T;
    }

    async function membersOn(node: PresenceNode, channel: string): Promise<PresenceMembers> {
      const { members } = await ask<{ members: PresenceMembers }>(node, { members: channel });
      return { ...members, members: [...members.members].sort(byMember) };
    }

    /** `<room>-u0`..`<room>-u14` with session s0..s14, spread round-robin over the nodes, in `room` with meta { nick }. */
    async function fifteenMembers(room: string): Promise<PresenceMember[]> {
      const expected: PresenceMember[] = [];
      for (let n = 0; n < 15; n++) {
        const node = nodes[n % nodes.length];
        const client = await connect(node, `${room}-u${n}`, `s${n}`);
        client.send({ join: room, meta: { nick: `N${n}` } });
        expect(await client.expectMessage()).toEqual({ joined: room });
        expected.push({ userId: `${room}-u${n}`, sessionId: `s${n}`, meta: { nick: `N${n}` }, node: node.id });
      }
      return expected.sort(byMember);
    }

    const eventsIn = (channel: string, of: readonly PresenceNode[] = nodes) => presenceEvents(of).filter((event) => event.channel === channel);

    it("lists all 15 members, with meta and node, on every node; isOnline and sessionsOf see another node's users; one join event each", async () => {
      const expected = await fifteenMembers('list');

      for (const node of nodes) {
        await eventually(async () => expect(await membersOn(node, 'list')).toEqual({ members: expected, complete: true, missingNodes: [] }), 3000);
      }
      // list-u1 is connected to node 1 only.
      expect(await ask(nodes[0], { isOnline: 'list-u1' })).toEqual({ online: { online: true, complete: true, missingNodes: [] } });
      expect(await ask(nodes[2], { isOnline: 'nobody' })).toEqual({ online: { online: false, complete: true, missingNodes: [] } });
      expect(await ask(nodes[0], { sessionsOf: 'list-u2' })).toEqual({
        sessions: { sessions: [{ userId: 'list-u2', sessionId: 's2', node: nodes[2].id }], complete: true, missingNodes: [] },
      });
      const joins = eventsIn('list');
      expect(joins.map(({ userId, sessionId, meta, node }) => ({ userId, sessionId, meta, node })).sort(byMember)).toEqual(expected);
    }, 40_000);

    it('SIGSTOP: a query returns within its deadline, complete: false naming the paused node; SIGCONT: complete again, no event', async () => {
      const expected = await fifteenMembers('stop');
      for (const node of nodes) await eventually(async () => expect((await membersOn(node, 'stop')).complete).toBe(true), 3000);
      const paused = nodes[1];

      paused.process.child.kill('SIGSTOP');
      try {
        await eventually(async () => {
          const askedAt = Date.now();
          const answer = await membersOn(nodes[0], 'stop');
          // The query's own deadline is 2 heartbeats; it does not wait for a node that is silent.
          expect(Date.now() - askedAt).toBeLessThan(2 * HEARTBEAT + 300);
          // The paused node's members are still listed, as last known, until presenceTimeout.
          expect(answer).toEqual({ members: expected, complete: false, missingNodes: [paused.id] });
        }, 2000);
      } finally {
        paused.process.child.kill('SIGCONT');
      }
      for (const node of nodes) {
        await eventually(async () => expect(await membersOn(node, 'stop')).toEqual({ members: expected, complete: true, missingNodes: [] }), 3000);
      }
      expect(eventsIn('stop').filter((event) => event.type !== 'join')).toEqual([]);
    }, 40_000);

    it(`churn: random joins, meta updates, leaves and reconnects on all nodes for ${CHURN_MS} ms, then every node agrees, with every event exactly once`, async () => {
      const channels = ['c0', 'c1', 'c2', 'c3'];
      /** What the cluster must show at the end: channel -> member key -> member. */
      const truth = new Map(channels.map((channel) => [channel, new Map<string, PresenceMember>()]));
      const expectedEvents: string[] = [];
      const key = (userId: string, sessionId: string) => `${userId}/${sessionId}`;
      const eventKey = (type: string, channel: string, userId: string, sessionId: string, meta: unknown, reason = '') =>
        `${type} ${channel} ${userId}/${sessionId} ${JSON.stringify(meta ?? null)} ${reason}`;
      let ops = 0;
      const until = Date.now() + CHURN_MS;

      async function churn(index: number): Promise<void> {
        const node = nodes[index % nodes.length];
        const userId = `w${index}`;
        let generation = 0;
        let client = await connect(node, userId, `g${generation}`);
        while (Date.now() < until) {
          const sessionId = `g${generation}`;
          const channel = channels[Math.floor(Math.random() * channels.length)];
          const roll = Math.random();
          const members = truth.get(channel)!;
          if (roll < 0.05) {
            await client.close(1000);
            for (const [name, inChannel] of truth) {
              const member = inChannel.get(key(userId, sessionId));
              if (!member) continue;
              inChannel.delete(key(userId, sessionId));
              expectedEvents.push(eventKey('leave', name, userId, sessionId, member.meta, 'disconnected'));
            }
            client = await connect(node, userId, `g${++generation}`);
          } else if (roll < 0.55) {
            const meta = { n: ops };
            client.send({ join: channel, meta });
            expect(await client.expectMessage()).toEqual({ joined: channel });
            const type = members.has(key(userId, sessionId)) ? 'update' : 'join';
            members.set(key(userId, sessionId), { userId, sessionId, meta, node: node.id });
            expectedEvents.push(eventKey(type, channel, userId, sessionId, meta));
          } else {
            client.send({ leave: channel });
            const member = members.get(key(userId, sessionId));
            expect(await client.expectMessage()).toEqual({ left: member !== undefined });
            if (member) {
              members.delete(key(userId, sessionId));
              expectedEvents.push(eventKey('leave', channel, userId, sessionId, member.meta, 'left'));
            }
          }
          ops++;
          await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 40));
        }
      }
      await Promise.all(Array.from({ length: 24 }, (_, index) => churn(index)));
      const quietAt = Date.now();

      for (const node of nodes) {
        for (const channel of channels) {
          const members = [...truth.get(channel)!.values()].sort(byMember);
          await eventually(async () => expect(await membersOn(node, channel)).toEqual({ members, complete: true, missingNodes: [] }), 5000);
        }
      }
      const agreedAfter = Date.now() - quietAt;
      const observed = () =>
        presenceEvents(nodes)
          .filter((event) => channels.includes(event.channel))
          .map((event) => eventKey(event.type, event.channel, event.userId, event.sessionId, event.meta, event.type === 'leave' ? event.reason : ''))
          .sort();
      await eventually(() => expect(observed()).toEqual([...expectedEvents].sort()), 3000);
      console.log(`presence churn on ${broker}: ${ops} operations in ${CHURN_MS} ms; all nodes agreed ${agreedAfter} ms after the churn stopped`);
      expect(ops).toBeGreaterThan(CHURN_MS / 50);
    }, CHURN_MS + 40_000);
    it('SIGKILL: within the bound every other node drops its members, one leave per member cluster-wide; a restarted node starts clean', async () => {
      const expected = await fifteenMembers('kill');
      for (const node of nodes) await eventually(async () => expect((await membersOn(node, 'kill')).members).toHaveLength(15), 3000);
      const [dead, ...alive] = [nodes[2], nodes[0], nodes[1]];
      const survivors = expected.filter((member) => member.node !== dead.id);

      const killedAt = Date.now();
      dead.process.child.kill('SIGKILL');
      for (const node of alive) {
        await eventually(
          async () => expect(await membersOn(node, 'kill')).toEqual({ members: survivors, complete: true, missingNodes: [] }),
          REMOVAL_BOUND + 1000,
        );
      }
      const removedAfter = Date.now() - killedAt;
      expect(removedAfter).toBeLessThan(REMOVAL_BOUND);

      const leavesOf = () =>
        eventsIn('kill', alive)
          .filter((event) => event.type === 'leave')
          .map((event) => ({ userId: event.userId, sessionId: event.sessionId, meta: event.meta, node: event.node, reason: event.type === 'leave' && event.reason }))
          .sort(byMember);
      const removed = expected.filter((member) => member.node === dead.id).map((member) => ({ ...member, reason: 'node-down' }));
      await eventually(() => expect(leavesOf()).toEqual(removed));
      await new Promise((resolve) => setTimeout(resolve, 4 * HEARTBEAT));
      expect(leavesOf()).toEqual(removed);

      // A new process (a new node id) on the same prefix knows only the live nodes' members.
      const restarted = await startNode();
      nodes = [...alive, restarted, dead];
      expect(await membersOn(restarted, 'kill')).toEqual({ members: survivors, complete: true, missingNodes: [] });
      expect(presenceEvents([restarted])).toEqual([]);
      expect((await membersOn(restarted, 'list')).members.map((member) => member.node)).not.toContain(dead.id);
    }, 40_000);

  });
}

presenceSuite('redis', redisUp, { REDIS_URL });
presenceSuite('nats', natsUp, { NATS_URL });
