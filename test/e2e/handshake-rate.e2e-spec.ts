import { afterEach, describe, expect, it } from 'vitest';
import { OnAuthenticate, RiversideHandler, RiversideStats } from 'nestjs-riverside';
import { HandshakeRefusedError, TestClient } from 'nestjs-riverside/testing';
import { type RunningApp, startRiverside } from '../support/riverside-app.js';

let authentications = 0;

@RiversideHandler()
class CountingHandler {
  @OnAuthenticate()
  authenticate() {
    authentications++;
    return { userId: `u${authentications}` };
  }
}

// Issue 11, point 5: the clients of a killed worker reconnecting at once must not overload the others.
describe('maxHandshakesPerSecond (reconnect storms)', () => {
  let app: RunningApp;
  afterEach(() => app?.close());

  it('admits maxHandshakesPerSecond handshakes a second and refuses the rest with 503 and a Retry-After that spreads them over the next seconds', async () => {
    app = await startRiverside({ maxHandshakesPerSecond: 10 }, [CountingHandler]);
    const stats = app.app.get(RiversideStats);
    authentications = 0;

    // A storm of 35 clients at once, well within one second.
    const results = await Promise.allSettled(Array.from({ length: 35 }, () => app.connect('/')));

    const admitted = results.filter((r): r is PromiseFulfilledResult<TestClient> => r.status === 'fulfilled');
    const refusals = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as HandshakeRefusedError] : []));
    expect(admitted).toHaveLength(10);
    expect(refusals).toHaveLength(25);
    expect(refusals.every((refusal) => refusal instanceof HandshakeRefusedError && refusal.status === 503)).toBe(true);
    expect(refusals.every((refusal) => refusal.body === 'Service Unavailable')).toBe(true);
    // Refused before authentication: a storm costs no @OnAuthenticate call.
    expect(authentications).toBe(10);
    // The first 10 refused come back in 1 s, the next 10 in 2 s, the last 5 in 3 s.
    const retryAfter = refusals.map((refusal) => Number(refusal.headers['retry-after'])).sort();
    expect(retryAfter).toEqual([...Array(10).fill(1), ...Array(10).fill(2), ...Array(5).fill(3)]);
    expect(stats.rejections[503]).toBe(25);

    // The admitted are untouched; after Retry-After, a new handshake is admitted again.
    for (const { value: client } of admitted) expect(client.ws.readyState).toBe(client.ws.OPEN);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await expect(app.connect('/')).resolves.toBeInstanceOf(TestClient);
  });

  it('admits every handshake when not set', async () => {
    app = await startRiverside({}, [CountingHandler]);
    const results = await Promise.allSettled(Array.from({ length: 30 }, () => app.connect('/')));
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
  });
});
