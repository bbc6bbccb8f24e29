import { afterEach, describe, expect, it } from 'vitest';
import { type AuthRequest, DeliveryService, OnAuthenticate, RiversideHandler, RiversideStats } from 'nestjs-riverside';
import { eventually, type RunningApp, startRiverside } from '../support/riverside-app.js';

// A user's connections as they come and go (the registry keeps a lone connection without a Set,
// issue 12): deliveries to the user and to each session keep reaching exactly the open ones.

@RiversideHandler({ path: '/' })
class QueryAuthHandler {
  @OnAuthenticate()
  authenticate(request: AuthRequest) {
    return { userId: String(request.queries.user), sessionId: String(request.queries.session) };
  }
}

describe("a user's connections", () => {
  let app: RunningApp;
  afterEach(() => app?.close());

  it('reach the user and their own session as the user goes from one connection to three and back', async () => {
    app = await startRiverside({}, [QueryAuthHandler]);
    const delivery = app.app.get(DeliveryService);
    const a = await app.connect('/?user=u&session=s1');
    expect(delivery.deliver({ user: 'u' }, 'one')).toBe(1);
    expect(await a.expectMessage()).toBe('one');

    const b = await app.connect('/?user=u&session=s2');
    const c = await app.connect('/?user=u&session=s2');
    expect(delivery.deliver({ user: 'u' }, 'three')).toBe(3);
    expect(delivery.deliver({ session: ['u', 's2'] }, 'two of them')).toBe(2);
    expect(delivery.deliver({ session: ['u', 's1'] }, 'first')).toBe(1);
    expect(await a.expectMessages(2)).toEqual(['three', 'first']);
    for (const client of [b, c]) expect(await client.expectMessages(2)).toEqual(['three', 'two of them']);

    a.ws.close();
    b.ws.close();
    const stats = app.app.get(RiversideStats);
    await eventually(() => expect(stats.currentConnections).toBe(1));
    expect(delivery.deliver({ user: 'u' }, 'last one')).toBe(1);
    expect(delivery.deliver({ session: ['u', 's1'] }, 'gone')).toBe(0);
    expect(delivery.deliver({ session: ['u', 's2'] }, 'still here')).toBe(1);
    expect(await c.expectMessages(2)).toEqual(['last one', 'still here']);

    c.ws.close();
    await eventually(() => expect(stats.currentConnections).toBe(0));
    expect(delivery.deliver({ user: 'u' }, 'nobody')).toBe(0);
    const d = await app.connect('/?user=u&session=s3');
    expect(delivery.deliver({ user: 'u' }, 'again')).toBe(1);
    expect(await d.expectMessage()).toBe('again');
  });
});
