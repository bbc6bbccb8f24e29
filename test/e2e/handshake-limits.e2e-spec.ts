import { connect as connectTcp, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { type AuthResult, OnAuthenticate, RiversideHandler, RiversideStats } from 'nestjs-riverside';
import { HandshakeRefusedError, TestClient } from 'nestjs-riverside/testing';
import { AuthenticatedEchoHandler } from '../support/echo-handlers.js';
import { eventually, type RunningApp, startRiverside } from '../support/riverside-app.js';

// Issue 6, point 2 and 6: what a client can make the server hold before its 101 is bounded in
// time (handshakeTimeout) and bytes (a few KiB per socket, a global budget), and what clients
// trigger at will is logged at most once per interval.

const hung = { calls: 0, release: [] as (() => void)[] };

/** @OnAuthenticate never settles (an auth service that lost the reply) until the test releases it. */
@RiversideHandler({ path: '/hung' })
class HungAuthHandler {
  @OnAuthenticate()
  authenticate(): Promise<AuthResult> {
    hung.calls++;
    return new Promise((resolve) => hung.release.push(() => resolve({ userId: 'late' })));
  }
}

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

function handshake(path: string): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n\r\n`
  );
}

/** Opens a socket, writes `request`, resolves with what came back once the server closed it. */
function exchange(port: number, request: string): Promise<string> {
  return pipelining(port, request).answer;
}

/** A socket that sent `request` and can then pipeline more bytes behind it. */
function pipelining(port: number, request: string): { answer: Promise<string>; send(bytes: number): void } {
  const socket: Socket = connectTcp(port, '127.0.0.1');
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  socket.on('error', () => {});
  const answer = new Promise<string>((resolve) => socket.on('close', () => resolve(received)));
  socket.write(request);
  const chunk = Buffer.alloc(16 * 1024, 0x61);
  return {
    answer,
    send(bytes) {
      let sent = 0;
      const pump = () => {
        while (sent < bytes && !socket.destroyed) {
          sent += chunk.length;
          if (!socket.write(chunk)) return void socket.once('drain', pump);
        }
      };
      pump();
    },
  };
}

let running: RunningApp;
beforeEach(() => {
  hung.calls = 0;
  hung.release = [];
});
afterEach(async () => {
  for (const release of hung.release) release();
  await running?.close();
});

describe('handshakeTimeout', () => {
  it('frees the slots of 5 hung @OnAuthenticate calls with maxConnections 5: a sixth client connects after the timeout', async () => {
    running = await startRiverside({ maxConnections: 5, handshakeTimeout: 400 }, [HungAuthHandler, AuthenticatedEchoHandler]);
    const stats = running.app.get(RiversideStats);
    const hungClients = Array.from({ length: 5 }, () => TestClient.expectRefused(running.url('/hung'), { timeout: 3000 }));
    await eventually(() => expect(hung.calls).toBe(5));
    expect((await TestClient.expectRefused(running.url('/echo'))).status).toBe(503);

    const refusals = await Promise.all(hungClients);
    expect(refusals.map((refusal) => refusal.status)).toEqual([503, 503, 503, 503, 503]);
    expect(refusals[0].body).toBe('Service Unavailable');
    const sixth = await running.connect('/echo');
    sixth.send({ after: 'timeout' });
    expect(await sixth.expectMessage()).toEqual({ after: 'timeout' });
    expect(stats.handshakeTimeouts).toBe(5);
    expect(stats.rejections[503]).toBe(6);
  });

  it('discards the late result of an @OnAuthenticate that settles after the timeout (no connection, slot not freed twice)', async () => {
    running = await startRiverside({ maxConnections: 1, handshakeTimeout: 200 }, [HungAuthHandler, AuthenticatedEchoHandler]);
    const stats = running.app.get(RiversideStats);
    expect((await TestClient.expectRefused(running.url('/hung'))).status).toBe(503);
    for (const release of hung.release.splice(0)) release();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(stats.totalConnections).toBe(0);
    const client = await running.connect('/echo');
    // The one slot is taken: a second handshake is refused (the late settle did not free it again).
    expect((await TestClient.expectRefused(running.url('/echo'))).status).toBe(503);
    client.send('still here');
    expect(await client.expectMessage()).toBe('still here');
  });

  it('closes a socket that sends no request within handshakeTimeout', async () => {
    running = await startRiverside({ handshakeTimeout: 300 }, [AuthenticatedEchoHandler]);
    const started = Date.now();
    const { elapsed, received } = await new Promise<{ elapsed: number; received: string }>((resolve) => {
      const socket = connectTcp(running.server.address().port, '127.0.0.1');
      let text = '';
      // Read: a closing server may first write a 408, and an unread stream never ends.
      socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
      socket.on('error', () => {});
      socket.on('close', () => resolve({ elapsed: Date.now() - started, received: text }));
    });
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2500);
    // Node's inactivity timeout closes it silently; its header-timeout check answers 408 first.
    expect(received === '' || received.startsWith('HTTP/1.1 408 ')).toBe(true);
  });

  it('answers a request whose headers trickle in for longer than handshakeTimeout with 408', async () => {
    running = await startRiverside({ handshakeTimeout: 300 }, [AuthenticatedEchoHandler]);
    const response = await new Promise<string>((resolve) => {
      const socket = connectTcp(running.server.address().port, '127.0.0.1');
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
      socket.on('error', () => {});
      socket.on('close', () => {
        clearInterval(trickle);
        resolve(received);
      });
      socket.write('GET /echo HTTP/1.1\r\n');
      const trickle = setInterval(() => socket.writable && socket.write('X-Slow: 1\r\n'), 100);
    });
    expect(response).toMatch(/^HTTP\/1\.1 408 /);
  });
});

describe('bytes pipelined before the 101', () => {
  it('are handed to the handler after the upgrade when they are few', async () => {
    running = await startRiverside({}, [AuthenticatedEchoHandler]);
    const ws = new WebSocket(running.url('/echo'));
    const echoed = new Promise<string>((resolve) => ws.once('message', (data) => resolve(String(data))));
    ws.once('open', () => ws.send('"hello"'));
    expect(await echoed).toBe('"hello"');
    ws.terminate();
  });

  it('keep 300 pipelining sockets with a pending @OnAuthenticate under the pre-upgrade budget: each gets 400 and is closed', async () => {
    running = await startRiverside({ maxConnections: 1000, handshakeTimeout: 15_000 }, [HungAuthHandler]);
    const stats = running.app.get(RiversideStats);
    const port = running.server.address().port;
    // 4 KiB each first: held while @OnAuthenticate is pending, within the per-socket cap.
    const sockets = Array.from({ length: 300 }, () => pipelining(port, handshake('/hung') + 'a'.repeat(4096)));
    await eventually(() => expect(stats.preUpgradeBytes).toBe(300 * 4096), 5000);
    // Then 252 KiB more each: 75 MiB in all that an unbounded server would hold for as long as auth is pending.
    for (const socket of sockets) socket.send(252 * 1024);
    const answers = await Promise.all(sockets.map((socket) => socket.answer));
    expect(answers.filter((answer) => answer.startsWith('HTTP/1.1 400 Bad Request')).length).toBe(300);
    expect(stats.rejections[400]).toBe(300);
    expect(stats.preUpgradeBytes).toBe(0);
  });
});

describe('refusal warnings', () => {
  it('log a 2,000-handshake storm past maxConnections in a handful of lines, and count every refusal', async () => {
    running = await startRiverside({ maxConnections: 1 }, [AuthenticatedEchoHandler]);
    const stats = running.app.get(RiversideStats);
    const holder = await running.connect('/echo');
    const port = running.server.address().port;
    let refused = 0;
    for (let batch = 0; batch < 10; batch++) {
      const answers = await Promise.all(Array.from({ length: 200 }, () => exchange(port, handshake('/echo'))));
      refused += answers.filter((answer) => answer.startsWith('HTTP/1.1 503 ')).length;
    }
    expect(refused).toBe(2000);
    expect(stats.rejections[503]).toBe(2000);
    const warnings = running.logger.entries.filter((entry) => entry.level === 'warn');
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings.length).toBeLessThanOrEqual(3);
    expect(warnings[0].message).toContain('maxConnections (1) reached');
    holder.send('ok');
    expect(await holder.expectMessage()).toBe('ok');
  });

  it('log the count of what they held back when the app closes', async () => {
    running = await startRiverside({ maxConnections: 1 }, [AuthenticatedEchoHandler]);
    await running.connect('/echo');
    for (let i = 0; i < 5; i++) {
      const refusal = await TestClient.expectRefused(running.url('/echo')).catch((error: unknown) => error);
      expect((refusal as HandshakeRefusedError).status).toBe(503);
    }
    await running.close();
    const warnings = running.logger.entries.filter((entry) => entry.level === 'warn').map((entry) => entry.message);
    expect(warnings).toHaveLength(2);
    expect(warnings[1]).toMatch(/^4 more like this in the last 10 s; last: .*maxConnections \(1\) reached/);
  });
});
