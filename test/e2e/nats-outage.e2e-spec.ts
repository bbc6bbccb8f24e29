import { afterEach, describe, expect, it } from 'vitest';
import { type AuthRequest, DeliveryService, OnAuthenticate, RiversideHandler, RiversideStats } from 'nestjs-riverside';
import type { TestClient } from 'nestjs-riverside/testing';
import { uniquePrefix } from '../support/brokers.js';
import { natsServerAvailable, OwnNatsServer, TrackedNatsTransport } from '../support/nats.js';
import { eventually, type RunningApp, startRiverside } from '../support/riverside-app.js';

@RiversideHandler()
class UserHandler {
  @OnAuthenticate()
  authenticate(req: AuthRequest) {
    return { userId: String(req.queries.user) };
  }
}

const enabled = await natsServerAvailable();

/**
 * A nats-server of this file's own, on a port of its own, killed and restarted by the tests:
 * the shared server of the suite is never touched.
 */
describe.runIf(enabled)('NATS server outage (SPEC 9.5, 14.2)', () => {
  let server: OwnNatsServer | undefined;
  const apps: RunningApp[] = [];

  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    await server?.kill();
    server = undefined;
  });

  async function node(prefix: string, natsServer: OwnNatsServer, options: { reconnectTimeWait?: number; closeTimeout?: number } = {}) {
    // Reconnect attempts every ~100 ms instead of every 2 s, to keep the test short.
    const transport = new TrackedNatsTransport({ servers: natsServer.url, prefix, reconnectTimeWait: 100, reconnectJitter: 20, ...options });
    const app = await startRiverside({ transport }, [UserHandler]);
    apps.push(app);
    return { app, transport };
  }

  /** Delivers probes from `from` until one reaches `client`, then waits for the rest to land. */
  async function untilDelivered(from: RunningApp, user: string, client: TestClient): Promise<void> {
    const delivery = from.app.get(DeliveryService);
    const deadline = Date.now() + 5000;
    for (let probe = 0; ; probe++) {
      delivery.deliver({ user }, { probe });
      try {
        await client.expectFrame(100);
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
      }
    }
    while (await client.expectFrame(200).then(() => true, () => false));
  }

  it('keeps local delivery while NATS is down, and delivers across nodes again once it is back, untouched', async () => {
    server = await OwnNatsServer.start();
    const prefix = uniquePrefix('outage');
    const a = await node(prefix, server);
    const b = await node(prefix, server);
    const local = await a.app.connect('/', { query: { user: 'local' } });
    const ann = await b.app.connect('/', { query: { user: 'ann' } });
    await eventually(() => expect(b.transport.subscribed).toContain('user:ann'));
    const delivery = a.app.app.get(DeliveryService);
    delivery.deliver({ user: 'ann' }, { before: true });
    expect(await ann.expectMessage()).toEqual({ before: true });

    await server.kill();
    // Publishing fails (logged and counted) once the client knows the server is gone; no throw.
    const stats = a.app.app.get(RiversideStats);
    await eventually(() => {
      delivery.deliver({ user: 'ann' }, { during: true });
      expect(stats.transportErrors).toBeGreaterThan(0);
    }, 3000);
    expect(delivery.deliver({ user: 'local' }, { still: 'here' })).toBe(1);
    expect(await local.expectMessage()).toEqual({ still: 'here' });
    const logged = [...a.app.logger.errors(), ...b.app.logger.errors()].join('\n');
    expect(logged).toContain('Cluster transport failed publishing to user:ann: NatsTransport: the NATS server is unreachable');
    // A session that arrives during the outage subscribes too; the server learns of it on reconnect.
    const bea = await b.app.connect('/', { query: { user: 'bea' } });
    await eventually(() => expect(b.transport.subscribed).toContain('user:bea'));

    await server.restart();
    await untilDelivered(a.app, 'ann', ann);
    delivery.deliver({ user: 'ann' }, { after: 1 });
    delivery.deliver({ user: 'bea' }, { after: 2 });
    expect(await ann.expectMessage()).toEqual({ after: 1 });
    expect(await bea.expectMessage()).toEqual({ after: 2 });
    await local.expectNoMessage(0);
  });

  it('closes the app within its bounds while NATS is down', async () => {
    server = await OwnNatsServer.start();
    // The client's default 2 s between reconnect attempts: what a close that waited on the server would take.
    const a = await node(uniquePrefix('shutdown'), server, { reconnectTimeWait: 2000, closeTimeout: 500 });
    const client = await a.app.connect('/', { query: { user: 'u' } });
    await eventually(() => expect(a.transport.subscribed).toContain('user:u'));
    await server.kill();
    await new Promise((resolve) => setTimeout(resolve, 250)); // the client is in its reconnect loop now
    apps.splice(apps.indexOf(a.app), 1);
    const started = Date.now();
    await a.app.app.close();
    expect(Date.now() - started).toBeLessThan(1500);
    expect((await client.expectClose()).code).toBe(1001);
  });
});
