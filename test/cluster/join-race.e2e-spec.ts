import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from 'nestjs-riverside/testing';
import { uniquePrefix } from '../support/brokers.js';
import { DelayingProxy } from '../support/delaying-proxy.js';
import { NATS_URL, natsAvailable } from '../support/nats.js';
import { type ClusterNodeProcess, startClusterNode } from '../support/node-process.js';
import { REDIS_URL, redisAvailable } from '../support/redis.js';

// SPEC 14.4 with point 1 of issue 7: a client told it joined a channel gets every later
// broadcast to that channel from any node. The joining node is 30 ms from the broker (a delaying
// proxy, each way) and the broadcasting node is not, so a join that answered before its
// SUBSCRIBE was confirmed would lose nearly every trial.
const brokers = [
  { name: 'Redis', transport: 'redis', url: REDIS_URL, envKey: 'REDIS_URL', up: await redisAvailable() },
  { name: 'NATS', transport: 'nats', url: NATS_URL, envKey: 'NATS_URL', up: await natsAvailable() },
] as const;

const DELAY_MS = 30;
const WORKERS = 25;
const ROUNDS = 20;

for (const broker of brokers) {
  describe.runIf(broker.up)(`join, then a broadcast from another process, on ${broker.name} ${DELAY_MS} ms away`, () => {
    const prefix = uniquePrefix('join-race');
    const clients: TestClient[] = [];
    let proxy: DelayingProxy;
    let sender: ClusterNodeProcess;
    let joiner: ClusterNodeProcess;

    beforeAll(async () => {
      proxy = await DelayingProxy.start(Number(new URL(broker.url).port), DELAY_MS);
      [sender, joiner] = await Promise.all([
        startClusterNode(broker.transport, { [broker.envKey]: broker.url, RIVERSIDE_PREFIX: prefix }),
        startClusterNode(broker.transport, { [broker.envKey]: proxy.url(broker.transport), RIVERSIDE_PREFIX: prefix }),
      ]);
    });

    afterAll(async () => {
      for (const client of clients) client.ws.terminate();
      await Promise.all([sender?.stop(), joiner?.stop()]);
      await proxy?.close();
    });

    async function connect(node: ClusterNodeProcess, query: string): Promise<TestClient> {
      const client = await TestClient.connect(`${node.url}?user=${query}`, { timeout: 3000 });
      clients.push(client);
      return client;
    }

    /**
     * Broadcasts `{ trial }` to the channel from the sender process, through `trigger` (one per
     * worker: each stays well under the flood limit of 50 messages in 2 s).
     */
    const broadcast = (trigger: TestClient, channel: string) =>
      trigger.send({ deliver: { channel }, message: { trial: channel } });

    /** Reads `client`'s frames until every channel in `expected` has had its trial, or 2 s of silence. */
    async function collectTrials(client: TestClient, seen: string[], expected: number): Promise<void> {
      while (seen.length < expected) {
        let message: { trial?: string };
        try {
          message = (await client.expectMessage(2000)) as { trial?: string };
        } catch {
          return;
        }
        if (message.trial) seen.push(message.trial);
      }
    }

    it(`${WORKERS * ROUNDS} joins by message: every broadcast sent after the client saw { joined } arrives, once`, async () => {
      const lost: string[] = [];
      let duplicated = 0;
      await Promise.all(
        Array.from({ length: WORKERS }, async (_, worker) => {
          const client = await connect(joiner, `joiner-${worker}`);
          const trigger = await connect(sender, `trigger-${worker}`);
          const seen: string[] = [];
          const sent: string[] = [];
          for (let round = 0; round < ROUNDS; round++) {
            const channel = `race-${worker}-${round}`;
            client.send({ join: channel });
            // Trials of earlier rounds may arrive before this answer.
            for (;;) {
              const message = (await client.expectMessage()) as { joined?: string; trial?: string };
              if (message.trial) seen.push(message.trial);
              if (message.joined === channel) break;
            }
            broadcast(trigger, channel);
            sent.push(channel);
          }
          await collectTrials(client, seen, sent.length);
          lost.push(...sent.filter((channel) => !seen.includes(channel)));
          duplicated += seen.length - new Set(seen).size;
        }),
      );
      expect({ lost: lost.length, duplicated }).toEqual({ lost: 0, duplicated: 0 });
    }, 60_000);

    it('100 joins inside @OnInit: every broadcast sent after the client saw { joined } arrives', async () => {
      const lost: string[] = [];
      const triggers = await Promise.all(Array.from({ length: 25 }, (_, index) => connect(sender, `init-trigger-${index}`)));
      for (let batch = 0; batch < 4; batch++) {
        await Promise.all(
          Array.from({ length: 25 }, async (_, index) => {
            const channel = `init-race-${batch}-${index}`;
            const client = await connect(joiner, `init-${batch}-${index}&join=${channel}`);
            expect(await client.expectMessage()).toEqual({ joined: channel });
            broadcast(triggers[index], channel);
            const seen: string[] = [];
            await collectTrials(client, seen, 1);
            if (!seen.includes(channel)) lost.push(channel);
            client.ws.terminate();
          }),
        );
      }
      expect(lost).toEqual([]);
    }, 60_000);
  });
}
