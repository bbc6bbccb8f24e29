import 'reflect-metadata';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { OnAuthenticate, OnTerminate, RiversideHandler, RiversideStats, type TerminateReason } from 'nestjs-riverside';
import { closeCodeOf, muteClient } from '../support/mute-client.js';
import { eventually, type RunningApp, startRiverside } from '../support/riverside-app.js';

// A close the server starts (idle timeout, a limit, session.close()) sends a close frame and
// waits for the client's. A client that is gone, or no longer reads, never answers: ws.closeTimeout
// bounds how long its socket, its connection slot and its @OnTerminate wait for it.

@RiversideHandler()
class RecordingHandler {
  readonly reasons: TerminateReason[] = [];

  @OnAuthenticate()
  authenticate() {
    return { userId: 'u' };
  }

  @OnTerminate()
  terminate(reason: TerminateReason) {
    this.reasons.push(reason);
  }
}

describe('ws.closeTimeout: a client that does not answer the close frame', () => {
  const IDLE = 300;
  let app: RunningApp;
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await app?.close();
  });

  it('is dropped 5 s after the close by default (not ws\'s 30 s): its socket ends, the slot is freed, @OnTerminate runs', async () => {
    app = await startRiverside({ idleTimeout: IDLE }, [RecordingHandler]);
    const stats = app.app.get(RiversideStats);
    const client = await muteClient(app.server.address().port);
    sockets.push(client.socket);
    const opened = performance.now();

    const endedAt = await Promise.race([
      client.ended,
      new Promise<number>((_, reject) => setTimeout(() => reject(new Error('the server still holds the socket 8 s after the close')), IDLE + 8000)),
    ]);

    expect(closeCodeOf(client.frames)).toBe(3003);
    // Closed for idleness at ~IDLE, then the close handshake's 5 s.
    expect(endedAt - opened).toBeGreaterThanOrEqual(IDLE + 5000 - 50);
    await eventually(() => expect(app.app.get(RecordingHandler).reasons).toEqual(['idleTimeout']));
    expect(stats.currentConnections).toBe(0);
  }, 15_000);

  it('is dropped after ws.closeTimeout when set', async () => {
    const CLOSE_TIMEOUT = 400;
    app = await startRiverside({ idleTimeout: IDLE, ws: { closeTimeout: CLOSE_TIMEOUT } }, [RecordingHandler]);
    const client = await muteClient(app.server.address().port);
    sockets.push(client.socket);
    const opened = performance.now();

    const endedAt = await client.ended;

    expect(closeCodeOf(client.frames)).toBe(3003);
    expect(endedAt - opened).toBeGreaterThanOrEqual(IDLE + CLOSE_TIMEOUT - 50);
    expect(endedAt - opened).toBeLessThan(IDLE + CLOSE_TIMEOUT + 1500);
    await eventually(() => expect(app.app.get(RecordingHandler).reasons).toEqual(['idleTimeout']));
  });

  it('refuses a ws.closeTimeout that is not a positive integer at boot, naming the option', async () => {
    await expect(startRiverside({ ws: { closeTimeout: -1 } }, [RecordingHandler])).rejects.toThrow(
      'RiversideModule: invalid option "ws.closeTimeout": expected a positive integer, got -1.',
    );
  });
});
