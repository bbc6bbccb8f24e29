import { connect as connectTcp, Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { WebSocket } from 'ws';
import { DeliveryService, Frame, OnAuthenticate, OnInit, OnMessage, RiversideHandler, type Session } from 'nestjs-riverside';
import type { Connection } from '../../src/connection/connection.js';
import { TURN_FLUSH_BYTES } from '../../src/connection/outbound-writer.js';
import { connectionOf } from '../../src/connection/session.js';
import { type RunningApp, startRiverside } from '../support/riverside-app.js';

// Everything written to one socket in one event-loop turn leaves in one write (issue 12): the
// client sees the same frames, in the same order, with no added latency.

@RiversideHandler({ path: '/echo' })
class EchoHandler {
  static lastSession: Session | null = null;

  @OnAuthenticate()
  authenticate() {
    return { userId: 'u' };
  }

  @OnInit()
  onInit(session: Session) {
    EchoHandler.lastSession = session;
  }

  @OnMessage()
  onMessage(message: unknown) {
    return message;
  }
}

/** Replies from places other than a synchronous @OnMessage: a timer, an async handler. */
@RiversideHandler({ path: '/later' })
class LaterHandler {
  @OnInit()
  onInit(session: Session) {
    setTimeout(() => session.send({ from: 'timer' }), 5);
  }

  @OnMessage()
  async onMessage(message: { n: number }) {
    await new Promise((resolve) => setTimeout(resolve, 1));
    return { async: message.n };
  }
}

/** Writes, then closes, in the same callback. */
@RiversideHandler({ path: '/bye' })
class ByeHandler {
  @OnMessage()
  onMessage(message: unknown, session: Session) {
    session.send({ bye: message });
    session.close(4000, 'bye');
  }
}

describe('coalesced writes', () => {
  let app: RunningApp;
  afterEach(() => app?.close());

  it('writes the replies to 16 frames that arrived in one TCP chunk with one socket write, in order', async () => {
    app = await startRiverside({}, [EchoHandler]);
    const port = app.server.address().port;
    const client = await rawClient(port, '/echo');
    const writes = countServerWrites(port);
    try {
      const frames = Array.from({ length: 16 }, (_, n) => maskedTextFrame(JSON.stringify({ n })));
      client.socket.write(Buffer.concat(frames));

      const replies = await client.texts(16);

      expect(replies.map((text) => JSON.parse(text))).toEqual(Array.from({ length: 16 }, (_, n) => ({ n })));
      expect(writes.count).toBe(1);
    } finally {
      writes.restore();
      client.socket.destroy();
    }
  });

  it('writes the broadcasts of one turn to each member with one socket write, in order; a lone broadcast with one', async () => {
    app = await startRiverside({}, [EchoHandler]);
    const port = app.server.address().port;
    const delivery = app.app.get(DeliveryService);
    const members = [];
    for (let i = 0; i < 3; i++) {
      EchoHandler.lastSession = null;
      members.push(await app.connect('/echo'));
      await vi.waitFor(() => expect(EchoHandler.lastSession).not.toBeNull());
      EchoHandler.lastSession!.join('room');
    }
    const writes = countServerWrites(port);
    try {
      for (let n = 0; n < 3; n++) delivery.deliver({ channel: 'room' }, { n });
      for (const member of members) expect(await member.expectMessages(3)).toEqual([{ n: 0 }, { n: 1 }, { n: 2 }]);
      expect(writes.count).toBe(3);

      delivery.deliver({ channel: 'room' }, { alone: true });
      for (const member of members) expect(await member.expectMessage()).toEqual({ alone: true });
      expect(writes.count).toBe(6);
    } finally {
      writes.restore();
    }
  });

  it('reads the clock once for the 16 frames of one TCP chunk, not once per frame (flood window, idle sweep)', async () => {
    app = await startRiverside({}, [EchoHandler]);
    const client = await rawClient(app.server.address().port, '/echo');
    const clock = vi.spyOn(performance, 'now');
    try {
      client.socket.write(Buffer.concat(Array.from({ length: 16 }, (_, n) => maskedTextFrame(JSON.stringify({ n })))));
      expect(await client.texts(16)).toHaveLength(16);
      expect(clock.mock.calls.length).toBeLessThanOrEqual(2);
    } finally {
      clock.mockRestore();
      client.socket.destroy();
    }
  });

  it('gives a pipelining client its 1,000 replies in order, even when one turn writes more than maxBackpressure to it', async () => {
    app = await startRiverside({ maxBackpressure: 64 * 1024, transmissionLimit: { capacity: 2000, duration: 1000 } }, [EchoHandler]);
    const client = await app.connect('/echo');
    const padding = 'x'.repeat(1000);

    for (let n = 0; n < 1000; n++) client.send({ n, padding });
    const replies = (await client.expectMessages(1000, 10_000)) as { n: number }[];

    expect(replies.map((reply) => reply.n)).toEqual(Array.from({ length: 1000 }, (_, n) => n));
    expect(client.ws.readyState).toBe(client.ws.OPEN);
  });

  it.each([
    ['16 KiB', 16 * 1024],
    ['100 B', 100],
  ])('refuses a client that stops reading the first %s message that takes its unsent bytes past maxBackpressure, not before', async (_, size) => {
    const LIMIT = 256 * 1024;
    app = await startRiverside({ maxBackpressure: LIMIT, slowConsumer: 'drop' }, [EchoHandler]);
    const client = await app.connect('/echo');
    const serverSide = (connectionOf(EchoHandler.lastSession!) as Connection).ws as WebSocket;
    const delivery = app.app.get(DeliveryService);
    const chunk = Frame.binary(Buffer.alloc(size, 7));
    client.ws.pause();

    let unsentAtRefusal = -1;
    for (let i = 0; i < (64 * 1024 * 1024) / size && unsentAtRefusal === -1; i++) {
      const unsent = serverSide.bufferedAmount;
      if (delivery.deliver({ user: 'u' }, chunk) === 0) unsentAtRefusal = unsent;
      // A large message flushes at once, so every one is held to the limit exactly.
      else if (size >= TURN_FLUSH_BYTES) expect(unsent === 0 || unsent + size <= LIMIT).toBe(true);
    }

    expect(unsentAtRefusal + size).toBeGreaterThan(LIMIT);
    // Small messages are judged per flushed batch: late by less than one batch at most.
    expect(unsentAtRefusal).toBeLessThanOrEqual(LIMIT + TURN_FLUSH_BYTES);
    client.ws.resume();
  });

  it('sends a lone reply at once: nothing else has to be written for it to leave', async () => {
    app = await startRiverside({}, [EchoHandler]);
    const client = await app.connect('/echo');
    const sent = performance.now();

    client.send({ alone: true });

    expect(await client.expectMessage(1000)).toEqual({ alone: true });
    expect(performance.now() - sent).toBeLessThan(500);
  });

  it('sends what a timer and an async handler write, each on its own', async () => {
    app = await startRiverside({}, [LaterHandler]);
    const client = await app.connect('/later');
    expect(await client.expectMessage(1000)).toEqual({ from: 'timer' });

    client.send({ n: 7 });
    expect(await client.expectMessage(1000)).toEqual({ async: 7 });
  });

  it('sends what a callback writes just before it closes the connection ahead of the close frame', async () => {
    app = await startRiverside({}, [ByeHandler]);
    const client = await app.connect('/bye');

    client.send('now');

    expect(await client.expectMessage(1000)).toEqual({ bye: 'now' });
    expect(await client.expectClose(4000)).toEqual({ code: 4000, reason: 'bye' });
  });

  it('sends a delivery made in the same turn as delivery.close() ahead of the close frame', async () => {
    app = await startRiverside({}, [EchoHandler]);
    const client = await app.connect('/echo');
    const delivery = app.app.get(DeliveryService);

    delivery.deliver({ user: 'u' }, { last: true });
    delivery.close({ user: 'u' }, 4001, 'done');

    expect(await client.expectMessage(1000)).toEqual({ last: true });
    expect(await client.expectClose(4001)).toEqual({ code: 4001, reason: 'done' });
  });

  it("answers a frame that arrives in the same TCP chunk as the client's close frame before the close", async () => {
    app = await startRiverside({}, [EchoHandler]);
    const client = await rawClient(app.server.address().port, '/echo');
    try {
      client.socket.write(Buffer.concat([maskedTextFrame(JSON.stringify({ last: 1 })), maskedCloseFrame(1000)]));

      // The first frame back: the reply, not ws's answer to the close.
      const [reply] = await client.texts(1);

      expect(reply).toBe(JSON.stringify({ last: 1 }));
    } finally {
      client.socket.destroy();
    }
  });

  it('sends a delivery made from a timer with no other traffic', async () => {
    app = await startRiverside({}, [EchoHandler]);
    const client = await app.connect('/echo');
    const delivery = app.app.get(DeliveryService);

    setTimeout(() => delivery.deliver({ user: 'u' }, { tick: 1 }), 10);

    expect(await client.expectMessage(1000)).toEqual({ tick: 1 });
  });
});

/** Counts the stream-level writes (write or writev, each one syscall) of the server's sockets. */
function countServerWrites(port: number): { count: number; restore(): void } {
  const proto = Socket.prototype as unknown as Record<'_write' | '_writev', (...args: unknown[]) => unknown>;
  const originalWrite = proto._write;
  const originalWritev = proto._writev;
  const counter = {
    count: 0,
    restore() {
      proto._write = originalWrite;
      proto._writev = originalWritev;
    },
  };
  proto._write = function (this: Socket, ...args: unknown[]) {
    if (this.localPort === port) counter.count++;
    return originalWrite.apply(this, args);
  };
  proto._writev = function (this: Socket, ...args: unknown[]) {
    if (this.localPort === port) counter.count++;
    return originalWritev.apply(this, args);
  };
  return counter;
}

function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const masked = payload.map((byte, i) => byte ^ mask[i % 4]);
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

function maskedCloseFrame(code: number): Buffer {
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const payload = Buffer.from([code >> 8, code & 0xff]).map((byte, i) => byte ^ mask[i]);
  return Buffer.concat([Buffer.from([0x88, 0x82]), mask, payload]);
}

const VALID_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** A WebSocket client over a bare TCP socket, reading unmasked text frames under 126 bytes. */
function rawClient(port: number, path: string): Promise<{ socket: Socket; texts(count: number): Promise<string[]> }> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    let upgraded = false;
    let waiting: { count: number; resolve(texts: string[]): void } | null = null;
    const texts: string[] = [];
    const client = {
      socket,
      texts(count: number) {
        return new Promise<string[]>((done) => {
          waiting = { count, resolve: done };
          check();
        });
      },
    };
    function check() {
      if (waiting !== null && texts.length >= waiting.count) waiting.resolve(texts.splice(0, waiting.count));
    }
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (!upgraded) {
        const end = received.indexOf('\r\n\r\n');
        if (end === -1) return;
        upgraded = true;
        received = received.subarray(end + 4);
        resolve(client);
      }
      while (received.length >= 2 && received.length >= 2 + received[1]) {
        texts.push(received.subarray(2, 2 + received[1]).toString());
        received = received.subarray(2 + received[1]);
      }
      check();
    });
    socket.on('error', reject);
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${VALID_KEY}\r\n\r\n`,
    );
  });
}
