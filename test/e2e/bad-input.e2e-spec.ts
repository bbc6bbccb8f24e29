import fc from 'fast-check';
import { connect as tcpConnect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnMessage, RiversideHandler, RiversideStats } from 'nestjs-riverside';
import type { TestClient } from 'nestjs-riverside/testing';
import { type RunningApp, startRiverside } from '../support/riverside-app.js';

// SPEC 14.3: bad input gets its documented status or close code, never a crash, never another
// connection's trouble. Properties run with fast-check, bounded in count.

@RiversideHandler()
class EchoHandler {
  @OnMessage()
  onMessage(message: unknown) {
    return { echo: message };
  }
}

/** Writes bytes to a fresh TCP connection and collects what comes back until the server closes it. */
function exchange(port: number, bytes: Uint8Array, timeout = 1000): Promise<Buffer> {
  return new Promise((resolve) => {
    const socket: Socket = tcpConnect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks));
    };
    const timer = setTimeout(done, timeout);
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('close', done);
    socket.on('error', done);
    socket.write(bytes);
  });
}

/** The code of the close frame among the (unmasked) frames a server sent, or null. */
function serverCloseCode(bytes: Buffer): number | null {
  let offset = 0;
  while (offset + 2 <= bytes.length) {
    const opcode = bytes[offset] & 0x0f;
    let length = bytes[offset + 1] & 0x7f;
    let start = offset + 2;
    if (length === 126) {
      length = bytes.readUInt16BE(start);
      start += 2;
    } else if (length === 127) {
      length = Number(bytes.readBigUInt64BE(start));
      start += 8;
    }
    if (opcode === 0x8) return length >= 2 ? bytes.readUInt16BE(start) : null;
    offset = start + length;
  }
  return null;
}

const UPGRADE =
  'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

describe('bad input (SPEC 14.3)', () => {
  let running: RunningApp;
  let port: number;
  let bystander: TestClient;

  beforeAll(async () => {
    running = await startRiverside({ transmissionLimit: { capacity: Infinity } }, [EchoHandler]);
    port = running.server.address().port;
    bystander = await running.connect('/');
  });
  afterAll(() => running.close());

  /** The server is up and the connection that did nothing wrong still works. */
  async function expectUnharmed(): Promise<void> {
    const health = await fetch(running.httpUrl('/health'));
    expect(health.status).toBe(200);
    bystander.send({ still: 'here' });
    expect(await bystander.expectMessage()).toEqual({ echo: { still: 'here' } });
  }

  it('survives random bytes sent to the port instead of HTTP', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 2048 }), async (bytes) => {
        const answer = (await exchange(port, bytes, 300)).toString('latin1');
        // Whatever Node's HTTP parser makes of it: an HTTP error status, or nothing at all.
        if (answer !== '') expect(answer).toMatch(/^HTTP\/1\.1 (400|404|405|413|414|426|431|501|505) /);
      }),
      { numRuns: 40 },
    );
    await expectUnharmed();
  });

  it('answers upgrades with mangled WebSocket headers with 400, never 500', async () => {
    const header = fc.string({ maxLength: 40 }).filter((value) => !/[\r\n]/.test(value));
    await fc.assert(
      fc.asyncProperty(header, header, header, async (key, version, upgrade) => {
        const request =
          `GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket${upgrade}\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: ${version}\r\n\r\n`;
        const answer = (await exchange(port, Buffer.from(request, 'latin1'), 500)).toString('latin1');
        // 400, or (should the random values happen to be valid) 101; no answer if the socket broke.
        if (answer !== '') expect(answer).toMatch(/^HTTP\/1\.1 (400|101) /);
      }),
      { numRuns: 60 },
    );
    expect(running.logger.errors()).toEqual([]);
    await expectUnharmed();
  });

  it('closes a connection that sends random frames with a protocol close code, leaving others alone', async () => {
    let closed = 0;
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 2, maxLength: 512 }), async (frames) => {
        const answer = await exchange(port, Buffer.concat([Buffer.from(UPGRADE), frames]), 300);
        expect(answer.toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
        const closeCode = serverCloseCode(answer.subarray(answer.indexOf('\r\n\r\n') + 4));
        if (closeCode !== null) {
          closed++;
          expect([1002, 1007, 1009]).toContain(closeCode);
        }
      }),
      { numRuns: 40 },
    );
    // Random bytes are nearly always a protocol violation: most runs must have seen the close.
    expect(closed).toBeGreaterThan(20);
    expect(running.logger.errors()).toEqual([]);
    await expectUnharmed();
  });

  it('echoes every valid JSON text frame and ignores the rest without closing (JSON codec)', async () => {
    const client = await running.connect('/');
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.json(), fc.string()), async (text) => {
        client.sendRaw(text);
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          await client.expectNoMessage(20);
          return;
        }
        expect(await client.expectMessage()).toEqual({ echo: parsed });
      }),
      { numRuns: 80 },
    );
    expect(running.app.get(RiversideStats).invalidFrames).toBeGreaterThan(0);
    await expectUnharmed();
  });

  it('answers request headers larger than Node allows with 431', async () => {
    const request = `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`;
    expect((await exchange(port, Buffer.from(request))).toString()).toMatch(/^HTTP\/1\.1 431 /);
    await expectUnharmed();
  });
});
