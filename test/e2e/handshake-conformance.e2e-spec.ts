import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AuthResult, OnAuthenticate, OnMessage, RiversideHandler, RiversideStats } from 'nestjs-riverside';
import { TestClient } from 'nestjs-riverside/testing';
import { type RawAnswer, rawHttp } from '../support/http.js';
import { type RunningApp, startRiverside } from '../support/riverside-app.js';

// RFC 6455 4.2.1 / 4.2.2 and RFC 7692 5: everything `ws` would refuse is refused by Riverside
// before @OnAuthenticate runs, with the right status, a status-text body, and a rejections count.

let authenticated = 0;

@RiversideHandler({ path: '/ws', subprotocols: ['chat'] })
class CountingHandler {
  @OnAuthenticate()
  authenticate(): AuthResult {
    authenticated++;
    return { userId: 'u' };
  }

  @OnMessage()
  echo(message: unknown) {
    return message;
  }
}

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** A handshake request as bytes: `overrides` replace (or, with null, remove) a header of a valid one. */
function upgradeRequest(overrides: Record<string, string | null> = {}, requestLine = 'GET /ws HTTP/1.1'): string {
  const headers: Record<string, string | null> = {
    Host: '127.0.0.1',
    Connection: 'Upgrade',
    Upgrade: 'websocket',
    'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Key': KEY,
    ...overrides,
  };
  let text = `${requestLine}\r\n`;
  for (const [name, value] of Object.entries(headers)) if (value !== null) text += `${name}: ${value}\r\n`;
  return `${text}\r\n`;
}

let running: RunningApp;
let stats: RiversideStats;

async function send(request: string): Promise<RawAnswer> {
  return rawHttp(running.server.address().port, request);
}

function expectRefusal(answer: RawAnswer, status: number, text: string): void {
  expect(answer.status).toBe(status);
  expect(answer.body).toBe(text);
  expect(answer.headers['content-type']).toBe('text/plain; charset=utf-8');
  expect(answer.headers.upgrade).toBeUndefined();
  expect(authenticated).toBe(0);
  expect(stats.rejections[status]).toBe(1);
}

afterEach(() => running?.close());
beforeEach(() => {
  authenticated = 0;
});

describe('refusals of RFC 6455 4.2.1 / 4.2.2, before @OnAuthenticate', () => {
  beforeEach(async () => {
    running = await startRiverside({}, [CountingHandler]);
    stats = running.app.get(RiversideStats);
  });

  it('answers an unsupported Sec-WebSocket-Version with 426 and the versions it speaks', async () => {
    const answer = await send(upgradeRequest({ 'Sec-WebSocket-Version': '12' }));
    expectRefusal(answer, 426, 'Upgrade Required');
    expect(answer.headers['sec-websocket-version']).toBe('13, 8');
  });

  it('answers a non-numeric Sec-WebSocket-Version with 426 too', async () => {
    const answer = await send(upgradeRequest({ 'Sec-WebSocket-Version': 'thirteen' }));
    expectRefusal(answer, 426, 'Upgrade Required');
    expect(answer.headers['sec-websocket-version']).toBe('13, 8');
  });

  it('answers an upgrade with a method other than GET with 405 and Allow: GET', async () => {
    const answer = await send(upgradeRequest({}, 'POST /ws HTTP/1.1').replace('\r\n\r\n', '\r\nContent-Length: 0\r\n\r\n'));
    expectRefusal(answer, 405, 'Method Not Allowed');
    expect(answer.headers.allow).toBe('GET');
  });

  it('answers an HTTP/1.0 upgrade with 400 (the handshake needs HTTP/1.1)', async () => {
    const answer = await send(upgradeRequest({}, 'GET /ws HTTP/1.0'));
    expectRefusal(answer, 400, 'Bad Request');
  });

  it('answers an upgrade without Host with 400', async () => {
    const answer = await send(upgradeRequest({ Host: null }));
    expectRefusal(answer, 400, 'Bad Request');
  });

  it('answers a repeated subprotocol with 400', async () => {
    const answer = await send(upgradeRequest({ 'Sec-WebSocket-Protocol': 'chat, chat' }));
    expectRefusal(answer, 400, 'Bad Request');
  });

  it('answers an empty subprotocol entry with 400', async () => {
    const answer = await send(upgradeRequest({ 'Sec-WebSocket-Protocol': 'chat,,other' }));
    expectRefusal(answer, 400, 'Bad Request');
  });

  it('answers a trailing empty subprotocol entry with 400', async () => {
    const answer = await send(upgradeRequest({ 'Sec-WebSocket-Protocol': 'chat, ' }));
    expectRefusal(answer, 400, 'Bad Request');
  });

  it('answers an invalid Sec-WebSocket-Key with 400', async () => {
    const answer = await send(upgradeRequest({ 'Sec-WebSocket-Key': 'short' }));
    expectRefusal(answer, 400, 'Bad Request');
  });

  it('still upgrades a valid handshake sent by hand (the helper is sound)', async () => {
    const answer = await send(upgradeRequest({ 'Sec-WebSocket-Protocol': 'chat' }));
    expect(answer.status).toBe(101);
    expect(answer.headers['sec-websocket-protocol']).toBe('chat');
    expect(authenticated).toBe(1);
  });
});

describe('permessage-deflate offers (RFC 7692 5), with ws.perMessageDeflate on', () => {
  beforeEach(async () => {
    running = await startRiverside({ ws: { perMessageDeflate: true } }, [CountingHandler]);
    stats = running.app.get(RiversideStats);
  });

  it('declines an invalid offer and negotiates the valid one that follows it', async () => {
    const answer = await send(
      upgradeRequest({ 'Sec-WebSocket-Extensions': 'permessage-deflate; server_max_window_bits=20, permessage-deflate' }),
    );
    expect(answer.status).toBe(101);
    expect(answer.headers['sec-websocket-extensions']).toBe('permessage-deflate');
    expect(authenticated).toBe(1);
  });

  it('declines an offer with an unknown parameter and upgrades without compression', async () => {
    const answer = await send(upgradeRequest({ 'Sec-WebSocket-Extensions': 'permessage-deflate; frobnicate' }));
    expect(answer.status).toBe(101);
    expect(answer.headers['sec-websocket-extensions']).toBeUndefined();
  });

  it('declines an offer with a repeated parameter and keeps a valid later one with its parameters', async () => {
    const answer = await send(
      upgradeRequest({
        'Sec-WebSocket-Extensions':
          'permessage-deflate; client_max_window_bits=10; client_max_window_bits=11, permessage-deflate; client_max_window_bits',
      }),
    );
    expect(answer.status).toBe(101);
    expect(answer.headers['sec-websocket-extensions']).toBe('permessage-deflate');
  });

  it('answers a Sec-WebSocket-Extensions header it cannot parse with 400 before @OnAuthenticate', async () => {
    const answer = await send(upgradeRequest({ 'Sec-WebSocket-Extensions': 'permessage-deflate;;' }));
    expectRefusal(answer, 400, 'Bad Request');
  });

  it('compresses with a client that offers permessage-deflate (ws) and echoes', async () => {
    const client = await TestClient.connect(running.url('/ws'), { ws: { perMessageDeflate: true } });
    expect(client.ws.extensions).toContain('permessage-deflate');
    client.send({ hello: 'x'.repeat(200) });
    expect(await client.expectMessage()).toEqual({ hello: 'x'.repeat(200) });
    client.ws.terminate();
  });
});
