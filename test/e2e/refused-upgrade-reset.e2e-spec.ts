import { connect as connectTcp } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AuthenticatedEchoHandler } from '../support/echo-handlers.js';
import { type RunningApp, startRiverside } from '../support/riverside-app.js';

// Node removes its own 'error' listener from a socket before the 'upgrade' event. A client that
// resets its connection while the server writes a refusal must cost the server that socket
// only: no unhandled 'error' event, and the server keeps answering.

const UPGRADE = (path: string) =>
  `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
  'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';

/** Sends an upgrade request and resets the connection at once (RST, no FIN). */
function requestAndReset(port: number, path: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = connectTcp(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.on('close', () => resolve());
    socket.on('connect', () => socket.write(UPGRADE(path), () => socket.resetAndDestroy()));
  });
}

describe('a client that resets while its upgrade is refused', () => {
  let running: RunningApp;
  afterEach(() => running?.close());

  it.each([
    ['404, an unknown path', '/nowhere'],
    ['400, a malformed query', '/echo?%zz'],
  ])('leaves the server answering (%s)', async (_label, path) => {
    running = await startRiverside({}, [AuthenticatedEchoHandler]);
    const uncaught: Error[] = [];
    const onUncaught = (error: Error) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    try {
      const port = running.server.address().port;
      await Promise.all(Array.from({ length: 200 }, () => requestAndReset(port, path)));
      // Time for the server to write its refusals into the reset connections.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const client = await running.connect('/echo');
      client.ws.terminate();
    } finally {
      process.off('uncaughtException', onUncaught);
    }
    expect(uncaught).toEqual([]);
  });
});
