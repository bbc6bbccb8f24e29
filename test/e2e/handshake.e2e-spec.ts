import { connect as connectTcp } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import {
  AuthError,
  type AuthRequest,
  type AuthResult,
  OnAuthenticate,
  OnInit,
  OnMessage,
  OnTerminate,
  RiversideHandler,
  RiversideStats,
  type Session,
} from 'nestjs-riverside';
import { HandshakeRefusedError, TestClient, type TestClientOptions } from 'nestjs-riverside/testing';
import { fetchRaw, type HttpAnswer } from '../support/http.js';
import { eventually, type RunningApp, startRiverside } from '../support/riverside-app.js';

// SPEC 2.3, 3.1-3.6 and reference A5 phase 1, A8, A9, A13, B8: everything that happens before
// the 101, observed by real clients. Auth at the HTTP layer (B9-B11) is in auth.e2e-spec.ts.

// ---- fixtures ------------------------------------------------------------------------------

/** What @OnAuthenticate saw, sent back by @OnInit as the first message. */
interface SeenRequest {
  path: string;
  queries: Record<string, string | true>;
  headers: Record<string, string>;
  basic: { username: string; password: string };
  bearerToken: string;
  cookies: Record<string, string>;
  peer: { address: string; port: number; forwardedFor: string };
  subprotocols: string[];
}

@RiversideHandler({ path: '/probe' })
class ProbeHandler {
  @OnAuthenticate()
  authenticate(req: AuthRequest): AuthResult<SeenRequest> {
    const seen: SeenRequest = {
      path: req.path,
      queries: { ...req.queries },
      headers: { ...req.headers },
      basic: { ...req.basic },
      bearerToken: req.bearerToken,
      cookies: { ...req.cookies },
      peer: { ...req.peer },
      subprotocols: [...req.subprotocols],
    };
    return { userId: 'probe', state: seen, subprotocol: req.subprotocols[0] };
  }

  @OnInit()
  init(session: Session<SeenRequest>) {
    return session.state;
  }
}

/** What @OnInit reports about the session the handshake produced. */
interface SessionReport {
  userId: string;
  sessionId: string;
  subprotocol: string | null;
  state: unknown;
}

const calls = { authenticate: 0, init: 0, terminate: 0 };
/** Each test scripts what @OnAuthenticate of ScriptedHandler does. */
let script: (req: AuthRequest) => unknown = () => ({ userId: 'someone' });

function report(session: Session): SessionReport {
  return { userId: session.userId, sessionId: session.id, subprotocol: session.subprotocol, state: session.state ?? null };
}

@RiversideHandler()
class ScriptedHandler {
  @OnAuthenticate()
  authenticate(req: AuthRequest) {
    calls.authenticate++;
    return script(req);
  }

  @OnInit()
  init(session: Session) {
    calls.init++;
    return report(session);
  }

  @OnMessage()
  echo(message: unknown) {
    return message;
  }

  @OnTerminate()
  terminate() {
    calls.terminate++;
  }
}

@RiversideHandler({ path: '/anonymous' })
class AnonymousHandler {
  @OnInit()
  init(session: Session) {
    return report(session);
  }
}

@RiversideHandler({ path: '/chat', subprotocols: ['chat.v2', 'chat.v1'] })
class ChatProtocolHandler {
  @OnInit()
  init(session: Session) {
    return report(session);
  }
}

/** Browsers cannot set headers, so they send `new WebSocket(url, ['access_token', token])`. */
@RiversideHandler({ path: '/token-in-protocol' })
class TokenInProtocolHandler {
  @OnAuthenticate()
  authenticate(req: AuthRequest): AuthResult {
    const [marker, token] = req.subprotocols;
    if (marker !== 'access_token' || token !== 'eyJhbGciOi.payload.sig') throw AuthError.unauthorized();
    return { userId: 'browser-user', subprotocol: 'access_token' };
  }

  @OnInit()
  init(session: Session) {
    return report(session);
  }
}

const gated = { calls: 0, settled: 0, inits: [] as string[], release: () => {} };

/** The first @OnAuthenticate call waits until the test releases it; later ones answer at once. */
@RiversideHandler({ path: '/gated' })
class GatedHandler {
  @OnAuthenticate()
  async authenticate(): Promise<AuthResult> {
    const call = ++gated.calls;
    if (call === 1) await new Promise<void>((resolve) => (gated.release = resolve));
    gated.settled++;
    return { userId: `user-${call}` };
  }

  @OnInit()
  init(session: Session) {
    gated.inits.push(session.userId);
    return report(session);
  }
}

const storm = { authenticate: 0, init: 0, terminate: 0 };

@RiversideHandler({ path: '/slow' })
class SlowAuthHandler {
  @OnAuthenticate()
  async authenticate(): Promise<AuthResult> {
    storm.authenticate++;
    await new Promise((resolve) => setTimeout(resolve, 50));
    return { userId: 'stormy' };
  }

  @OnInit()
  init() {
    storm.init++;
  }

  @OnTerminate()
  terminate() {
    storm.terminate++;
  }
}

@RiversideHandler({ path: '/slow-echo' })
class SlowEchoHandler {
  @OnAuthenticate()
  async authenticate(): Promise<AuthResult> {
    await new Promise((resolve) => setTimeout(resolve, 30));
    return { userId: 'echo' };
  }

  @OnMessage()
  echo(message: unknown) {
    return message;
  }
}

// Riverside's TestMaxConnectionHandler (B8): authenticates as user 1 and echoes.
@RiversideHandler({ path: '/limited' })
class LimitedHandler {
  @OnAuthenticate()
  authenticate(): AuthResult {
    calls.authenticate++;
    return { userId: 1 };
  }

  @OnMessage()
  echo(message: unknown) {
    return message;
  }
}

// ---- helpers -------------------------------------------------------------------------------

const VALID_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/**
 * Sends an upgrade request with node:http, so that a test can send what a WebSocket client
 * never would. `undefined` removes one of the valid handshake headers.
 */
function rawUpgrade(
  running: RunningApp,
  path: string,
  headers: Record<string, string | undefined> = {},
  method = 'GET',
): Promise<HttpAnswer> {
  const all: Record<string, string | undefined> = {
    connection: 'Upgrade',
    upgrade: 'websocket',
    'sec-websocket-version': '13',
    'sec-websocket-key': VALID_KEY,
    ...headers,
  };
  const sent = Object.fromEntries(Object.entries(all).filter((entry): entry is [string, string] => entry[1] !== undefined));
  return fetchRaw(running.httpUrl(path), { method, headers: sent });
}

/** A refusal body is the short status text: no stack trace, no message of the error behind it. */
function expectNoDetail(body: string, ...secrets: string[]): void {
  expect(body.length).toBeLessThanOrEqual(40);
  expect(body).not.toMatch(/\n\s*at |\.[jt]s:\d+/);
  for (const secret of secrets) expect(body).not.toContain(secret);
}

/** A client-to-server text frame (masked, as RFC 6455 requires), payload under 126 bytes. */
function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const masked = payload.map((byte, i) => byte ^ mask[i % 4]);
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

/**
 * Writes the handshake and `pipelined` bytes in one packet over TCP, then reads the response
 * head and the first server frame (an unmasked text frame under 126 bytes).
 */
function pipelinedUpgrade(running: RunningApp, path: string, pipelined: Buffer): Promise<{ head: string; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp(running.server.address().port, '127.0.0.1');
    let received = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end === -1) return;
      const frame = received.subarray(end + 4);
      if (frame.length < 2 || frame.length < 2 + frame[1]) return;
      socket.destroy();
      resolve({ head: received.subarray(0, end).toString(), text: frame.subarray(2, 2 + frame[1]).toString() });
    });
    socket.on('error', reject);
    const handshake =
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
      `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${VALID_KEY}\r\n\r\n`;
    socket.write(Buffer.concat([Buffer.from(handshake), pipelined]));
  });
}

async function seen(running: RunningApp, target: string, options: TestClientOptions = {}): Promise<SeenRequest> {
  const client = await TestClient.connect(running.url('/probe') + target, options);
  try {
    return (await client.expectMessage()) as SeenRequest;
  } finally {
    client.ws.terminate();
  }
}

async function sessionOf(client: TestClient): Promise<SessionReport> {
  return (await client.expectMessage()) as SessionReport;
}

// ---- tests ---------------------------------------------------------------------------------

let running: RunningApp;
afterEach(() => running?.close());
beforeEach(() => {
  calls.authenticate = calls.init = calls.terminate = 0;
  script = () => ({ userId: 'someone' });
});

describe('the AuthRequest @OnAuthenticate receives (SPEC 3.1)', () => {
  beforeEach(async () => {
    running = await startRiverside({}, [ProbeHandler]);
  });

  it('has percent-decoded query values, with + read as a space', async () => {
    const { queries } = await seen(running, '?name=J%C3%B6rg+M%26M&caf%C3%A9=1');
    expect(queries).toEqual({ name: 'Jörg M&M', café: '1' });
  });

  it('has true for a query name without "="', async () => {
    const { queries } = await seen(running, '?debug&x=1');
    expect(queries).toEqual({ debug: true, x: '1' });
  });

  it('has the empty string for "name=" and skips empty pairs', async () => {
    const { queries } = await seen(running, '?a=&&b=2');
    expect(queries).toEqual({ a: '', b: '2' });
  });

  it('keeps the last value of a repeated query name', async () => {
    const { queries } = await seen(running, '?room=1&room=2&room=3');
    expect(queries).toEqual({ room: '3' });
  });

  it('has header names in lower case, including the handshake headers', async () => {
    const { headers } = await seen(running, '', { headers: { 'X-Request-ID': 'req-7' } });
    expect(headers['x-request-id']).toBe('req-7');
    expect(headers['sec-websocket-version']).toBe('13');
    expect(headers.upgrade?.toLowerCase()).toBe('websocket');
    expect(Object.keys(headers).filter((name) => name !== name.toLowerCase())).toEqual([]);
  });

  it('has basic credentials whose password may contain ":" (Riverside would drop them)', async () => {
    const { basic } = await seen(running, '', { basic: { username: 'alice', password: 's3:cr:et' } });
    expect(basic).toEqual({ username: 'alice', password: 's3:cr:et' });
  });

  it('has empty basic credentials without an Authorization header', async () => {
    const { basic } = await seen(running, '');
    expect(basic).toEqual({ username: '', password: '' });
  });

  it('has the bearer token of "Authorization: Bearer <token>"', async () => {
    const { bearerToken } = await seen(running, '', { bearer: 'tok.en-42' });
    expect(bearerToken).toBe('tok.en-42');
  });

  it('has an empty bearerToken without an Authorization header', async () => {
    const { bearerToken } = await seen(running, '');
    expect(bearerToken).toBe('');
  });

  it('has the cookies of the Cookie header, values decoded and unquoted', async () => {
    const { cookies } = await seen(running, '', { headers: { cookie: 'sid=abc123; theme=dark%20mode; note="hi there"' } });
    expect(cookies).toEqual({ sid: 'abc123', theme: 'dark mode', note: 'hi there' });
  });

  it('has the peer address and port of the client socket, and an empty forwardedFor', async () => {
    const ws = new WebSocket(running.url('/probe'));
    const clientPort = new Promise<number>((resolve) => ws.once('upgrade', (res) => resolve(res.socket.localPort ?? -1)));
    const first = new Promise<SeenRequest>((resolve) => ws.once('message', (data) => resolve(JSON.parse(String(data)))));
    try {
      const { peer } = await first;
      expect(peer).toEqual({ address: '127.0.0.1', port: await clientPort, forwardedFor: '' });
    } finally {
      ws.terminate();
    }
  });

  it('has the first X-Forwarded-For entry as forwardedFor, keeping the socket address', async () => {
    const { peer } = await seen(running, '', { headers: { 'x-forwarded-for': ' 203.0.113.7 , 10.0.0.1' } });
    expect(peer.forwardedFor).toBe('203.0.113.7');
    expect(peer.address).toBe('127.0.0.1');
  });

  it('ignores a malformed X-Forwarded-For (forwardedFor is empty) instead of refusing the handshake', async () => {
    const { peer } = await seen(running, '', { headers: { 'x-forwarded-for': '<script>, 10.0.0.1' } });
    expect(peer.forwardedFor).toBe('');
  });

  it('has the request path without the query string', async () => {
    const { path } = await seen(running, '?x=1');
    expect(path).toBe('/probe');
  });

  it('has the subprotocols the client offered, in its order', async () => {
    const { subprotocols } = await seen(running, '', { subprotocols: ['v2.chat', 'v1.chat'] });
    expect(subprotocols).toEqual(['v2.chat', 'v1.chat']);
  });
});

describe('the auth result (SPEC 3.2)', () => {
  beforeEach(async () => {
    running = await startRiverside({}, [ScriptedHandler, AnonymousHandler]);
  });

  it('gives the session its userId as a string, also for a numeric userId', async () => {
    script = () => ({ userId: 42 });
    const { userId } = await sessionOf(await running.connect('/'));
    expect(userId).toBe('42');
  });

  it('gives the session a random 40-hex id when it has no sessionId', async () => {
    const first = await sessionOf(await running.connect('/'));
    const second = await sessionOf(await running.connect('/'));
    expect(first.sessionId).toMatch(/^[0-9a-f]{40}$/);
    expect(second.sessionId).toMatch(/^[0-9a-f]{40}$/);
    expect(second.sessionId).not.toBe(first.sessionId);
  });

  it('gives the session the sessionId it returns', async () => {
    script = () => ({ userId: 'u1', sessionId: 'tab-3' });
    const { userId, sessionId } = await sessionOf(await running.connect('/'));
    expect({ userId, sessionId }).toEqual({ userId: 'u1', sessionId: 'tab-3' });
  });

  it('gives the session the state it returns', async () => {
    script = () => ({ userId: 'u1', state: { role: 'admin', rooms: [1, 2] } });
    const { state } = await sessionOf(await running.connect('/'));
    expect(state).toEqual({ role: 'admin', rooms: [1, 2] });
  });

  it('is awaited when @OnAuthenticate is async', async () => {
    script = async () => {
      await new Promise((resolve) => setTimeout(resolve, 30));
      return { userId: 'late', sessionId: 's-late' };
    };
    const { userId, sessionId } = await sessionOf(await running.connect('/'));
    expect({ userId, sessionId }).toEqual({ userId: 'late', sessionId: 's-late' });
  });

  it('is a random user and session for a handler without @OnAuthenticate', async () => {
    const first = await sessionOf(await running.connect('/anonymous'));
    const second = await sessionOf(await running.connect('/anonymous'));
    expect(first.userId).toMatch(/\S/);
    expect(second.userId).not.toBe(first.userId);
    expect(first.sessionId).toMatch(/^[0-9a-f]{40}$/);
  });
});

describe('refusing with AuthError (SPEC 3.3)', () => {
  beforeEach(async () => {
    running = await startRiverside({}, [ScriptedHandler]);
  });

  it('answers AuthError.unauthorized() with 401, its headers and a short body, without upgrading', async () => {
    script = () => {
      throw AuthError.unauthorized().withHeader('X-Auth-Reason', 'expired');
    };
    const refusal = await TestClient.expectRefused(running.url('/'));
    expect(refusal.status).toBe(401);
    expect(refusal.headers['x-auth-reason']).toBe('expired');
    expect(refusal.headers.upgrade).toBeUndefined();
    expectNoDetail(refusal.body);
  });

  it('answers AuthError.forbidden() with 403', async () => {
    script = () => {
      throw AuthError.forbidden();
    };
    const refusal = await TestClient.expectRefused(running.url('/'));
    expect(refusal.status).toBe(403);
    expectNoDetail(refusal.body);
  });

  it('answers new AuthError(status) with that status', async () => {
    script = () => {
      throw new AuthError(429).withHeader('Retry-After', '30');
    };
    const refusal = await TestClient.expectRefused(running.url('/'));
    expect(refusal.status).toBe(429);
    expect(refusal.headers['retry-after']).toBe('30');
  });

  it('answers an AuthError rejected by an async @OnAuthenticate with its status', async () => {
    script = async () => {
      await new Promise((resolve) => setTimeout(resolve, 10));
      throw new AuthError(403);
    };
    const refusal = await TestClient.expectRefused(running.url('/'));
    expect(refusal.status).toBe(403);
  });

  it('sends a Latin-1 header value byte for byte, as Node writes headers', async () => {
    script = () => {
      throw AuthError.unauthorized().withBasicRealm('Café Münster');
    };
    const refusal = await TestClient.expectRefused(running.url('/'));
    expect(refusal.headers['www-authenticate']).toBe('Basic realm="Café Münster"');
  });

  it('answers 500, not an unreadable response, when @OnAuthenticate builds a header value with a control character', async () => {
    script = () => {
      throw AuthError.unauthorized().withHeader('X-Note', 'bell\u0007');
    };
    const refusal = await TestClient.expectRefused(running.url('/'));
    expect(refusal.status).toBe(500);
    expect(refusal.headers['x-note']).toBeUndefined();
    expect(running.logger.errors()).toHaveLength(1);
    expect(running.logger.errors()[0]).toContain('ScriptedHandler.authenticate()');
  });

  it('does not log an AuthError as an error', async () => {
    script = () => {
      throw AuthError.unauthorized();
    };
    await TestClient.expectRefused(running.url('/'));
    expect(running.logger.errors()).toEqual([]);
  });

  it('never runs @OnInit or @OnTerminate for the refused handshake', async () => {
    script = () => {
      throw AuthError.unauthorized();
    };
    await TestClient.expectRefused(running.url('/'));
    script = () => ({ userId: 'admitted' });
    const admitted = await running.connect('/');
    await admitted.close();
    await eventually(() => expect(calls.terminate).toBeGreaterThan(0));
    expect(calls).toEqual({ authenticate: 2, init: 1, terminate: 1 });
  });
});

describe('a failing @OnAuthenticate (SPEC 3.3, STYLE 15)', () => {
  beforeEach(async () => {
    running = await startRiverside({}, [ScriptedHandler]);
  });

  it('answers a thrown Error with 500 and no detail, and logs it once with class and method', async () => {
    script = () => {
      throw new Error('users table unreachable at db-7.internal');
    };
    const refusal = await TestClient.expectRefused(running.url('/'));
    expect(refusal.status).toBe(500);
    expectNoDetail(refusal.body, 'users table', 'db-7');
    const errors = running.logger.errors();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('ScriptedHandler.authenticate()');
    expect(errors[0]).toContain('users table unreachable');
  });

  it('awaits a thenable that is not a native Promise', async () => {
    script = () => ({ then: (resolve: (value: unknown) => void) => resolve({ userId: 'from-thenable' }) });
    const client = await running.connect('/');
    expect((await sessionOf(client)).userId).toBe('from-thenable');
  });

  it('does not log the state of an invalid auth result, which may hold secrets', async () => {
    script = () => ({ userId: { id: 1 }, state: { token: 'secret-token-value' } });
    const refusal = await TestClient.expectRefused(running.url('/'));
    expect(refusal.status).toBe(500);
    expect(running.logger.errors()).toHaveLength(1);
    expect(running.logger.errors()[0]).toContain('userId must be a non-empty string or a finite number');
    expect(running.logger.errors()[0]).not.toContain('secret-token-value');
  });

  it('answers a rejected promise with 500 and logs it once', async () => {
    script = async () => {
      throw new TypeError('cannot read token');
    };
    const refusal = await TestClient.expectRefused(running.url('/'));
    expect(refusal.status).toBe(500);
    expect(running.logger.errors()).toHaveLength(1);
    expect(running.logger.errors()[0]).toMatch(/ScriptedHandler\.authenticate\(\).*cannot read token/);
  });

  it('answers a thrown non-Error value with 500 and logs it once', async () => {
    script = () => {
      throw 'plain string';
    };
    const refusal = await TestClient.expectRefused(running.url('/'));
    expect(refusal.status).toBe(500);
    expect(running.logger.errors()).toHaveLength(1);
    expect(running.logger.errors()[0]).toContain('plain string');
  });

  it('answers an AuthError built with an invalid status with 500', async () => {
    script = () => {
      throw new AuthError(302);
    };
    const refusal = await TestClient.expectRefused(running.url('/'));
    expect(refusal.status).toBe(500);
    expect(running.logger.errors()).toHaveLength(1);
  });

  it('answers a result of undefined with 500 and logs the shapes it accepts', async () => {
    script = () => undefined;
    const refusal = await TestClient.expectRefused(running.url('/'));
    expect(refusal.status).toBe(500);
    const errors = running.logger.errors();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('ScriptedHandler.authenticate() returned undefined');
    expect(errors[0]).toContain('Expected { userId');
  });

  it('answers a userId that is an object with 500 and logs why', async () => {
    script = () => ({ userId: { id: 1 } });
    const refusal = await TestClient.expectRefused(running.url('/'));
    expect(refusal.status).toBe(500);
    expect(running.logger.errors()).toHaveLength(1);
    expect(running.logger.errors()[0]).toContain('userId must be a non-empty string or a finite number');
  });

  it('answers a sessionId that is not a string with 500', async () => {
    script = () => ({ userId: 'u', sessionId: 7 });
    const refusal = await TestClient.expectRefused(running.url('/'));
    expect(refusal.status).toBe(500);
    expect(running.logger.errors()).toHaveLength(1);
  });

  it('leaves the server accepting the next handshake', async () => {
    script = () => {
      throw new Error('boom');
    };
    await TestClient.expectRefused(running.url('/'));
    script = () => ({ userId: 'next' });
    const client = await running.connect('/');
    expect((await sessionOf(client)).userId).toBe('next');
    client.send({ ping: 1 });
    expect(await client.expectMessage()).toEqual({ ping: 1 });
  });
});

describe('subprotocols (SPEC 3.5)', () => {
  beforeEach(async () => {
    running = await startRiverside({}, [ScriptedHandler, ChatProtocolHandler, TokenInProtocolHandler]);
  });

  it('echoes the subprotocol the auth result chooses, and the session has it', async () => {
    script = (req) => ({ userId: 'u', subprotocol: req.subprotocols[1] });
    const client = await running.connect('/', { subprotocols: ['wamp', 'mqtt'] });
    expect(client.protocol).toBe('mqtt');
    expect((await sessionOf(client)).subprotocol).toBe('mqtt');
  });

  it('answers 500 when the auth result chooses a subprotocol the client did not offer', async () => {
    script = () => ({ userId: 'u', subprotocol: 'mqtt' });
    const refusal = await TestClient.expectRefused(running.url('/'), { subprotocols: ['wamp'] });
    expect(refusal.status).toBe(500);
    expect(running.logger.errors()).toHaveLength(1);
    expect(running.logger.errors()[0]).toContain('subprotocol must be one the client offered');
  });

  it("selects the handler's most preferred subprotocol among those the client offered", async () => {
    const client = await running.connect('/chat', { subprotocols: ['chat.v1', 'chat.v2'] });
    expect(client.protocol).toBe('chat.v2');
    expect((await sessionOf(client)).subprotocol).toBe('chat.v2');
  });

  it('accepts a client that offers no subprotocol, with none selected', async () => {
    const client = await running.connect('/chat');
    expect(client.protocol).toBe('');
    expect((await sessionOf(client)).subprotocol).toBeNull();
  });

  it('refuses with 400 a client that offered only subprotocols the handler does not speak', async () => {
    const refusal = await TestClient.expectRefused(running.url('/chat'), { subprotocols: ['chat.v3', 'mqtt'] });
    expect(refusal.status).toBe(400);
    expectNoDetail(refusal.body);
  });

  it('lets @OnAuthenticate read a bearer token carried in Sec-WebSocket-Protocol', async () => {
    const client = await running.connect('/token-in-protocol', { subprotocols: ['access_token', 'eyJhbGciOi.payload.sig'] });
    expect(client.protocol).toBe('access_token');
    const { userId } = await sessionOf(client);
    expect(userId).toBe('browser-user');
  });

  it('refuses a wrong token carried in Sec-WebSocket-Protocol with the AuthError status', async () => {
    const refusal = await TestClient.expectRefused(running.url('/token-in-protocol'), {
      subprotocols: ['access_token', 'forged.token.sig'],
    });
    expect(refusal.status).toBe(401);
  });

  it('refuses a malformed Sec-WebSocket-Protocol with 400 before @OnAuthenticate', async () => {
    const response = await rawUpgrade(running, '/', { 'sec-websocket-protocol': 'chat v1, "quoted"' });
    expect(response.status).toBe(400);
    expect(calls.authenticate).toBe(0);
  });
});

describe('the module subprotocols option (SPEC 3.5)', () => {
  it('selects from the module-wide list for a handler without its own', async () => {
    running = await startRiverside({ subprotocols: ['json.v1'] }, [AnonymousHandler]);
    const client = await running.connect('/anonymous', { subprotocols: ['xml', 'json.v1'] });
    expect(client.protocol).toBe('json.v1');
  });
});

describe('the Origin allow-list (SPEC 3.6)', () => {
  beforeEach(async () => {
    running = await startRiverside({ allowedOrigins: ['https://app.example.com'] }, [ScriptedHandler]);
  });

  it('refuses a disallowed Origin with 403 before @OnAuthenticate', async () => {
    const refusal = await TestClient.expectRefused(running.url('/'), { headers: { origin: 'https://evil.example' } });
    expect(refusal.status).toBe(403);
    expectNoDetail(refusal.body);
    expect(calls.authenticate).toBe(0);
  });

  it('accepts an allowed Origin', async () => {
    const client = await running.connect('/', { headers: { origin: 'https://app.example.com' } });
    expect((await sessionOf(client)).userId).toBe('someone');
  });

  it('accepts a client that sends no Origin (not a browser)', async () => {
    const client = await running.connect('/');
    expect((await sessionOf(client)).userId).toBe('someone');
  });

  it('checks Sec-WebSocket-Origin, which version-8 clients send instead of Origin', async () => {
    const response = await rawUpgrade(running, '/', {
      'sec-websocket-version': '8',
      'sec-websocket-origin': 'https://evil.example',
    });
    expect(response.status).toBe(403);
    expect(calls.authenticate).toBe(0);
  });
});

describe('malformed and misdirected upgrades (SPEC 2.3)', () => {
  beforeEach(async () => {
    running = await startRiverside({}, [ScriptedHandler]);
  });

  it('answers a Sec-WebSocket-Key that is not 16 base64-encoded bytes with 400, never calling @OnAuthenticate', async () => {
    const response = await rawUpgrade(running, '/', { 'sec-websocket-key': 'not-a-key' });
    expect(response.status).toBe(400);
    expectNoDetail(response.body);
    expect(calls.authenticate).toBe(0);
  });

  it('answers an upgrade without Sec-WebSocket-Key with 400', async () => {
    const response = await rawUpgrade(running, '/', { 'sec-websocket-key': undefined });
    expect(response.status).toBe(400);
    expect(calls.authenticate).toBe(0);
  });

  it('answers an upgrade without Sec-WebSocket-Version with 400, never calling @OnAuthenticate', async () => {
    const response = await rawUpgrade(running, '/', { 'sec-websocket-version': undefined });
    expect(response.status).toBe(400);
    expect(calls.authenticate).toBe(0);
  });

  it('answers an unsupported Sec-WebSocket-Version with 426 and the versions it speaks (RFC 6455 4.2.2)', async () => {
    const response = await rawUpgrade(running, '/', { 'sec-websocket-version': '12' });
    expect(response.status).toBe(426);
    expect(response.headers['sec-websocket-version']).toBe('13, 8');
    expect(calls.authenticate).toBe(0);
  });

  it('answers an upgrade with a method other than GET with 405 and Allow: GET', async () => {
    const response = await rawUpgrade(running, '/', {}, 'POST');
    expect(response.status).toBe(405);
    expect(response.headers.allow).toBe('GET');
    expect(calls.authenticate).toBe(0);
  });

  it('answers an upgrade on a path no handler serves with 404', async () => {
    const refusal = await TestClient.expectRefused(running.url('/no-such-handler'));
    expect(refusal.status).toBe(404);
    expectNoDetail(refusal.body);
    expect(calls.authenticate).toBe(0);
  });

  it('answers a query string with malformed percent-encoding with 400, never calling @OnAuthenticate', async () => {
    const refusal = await TestClient.expectRefused(`${running.url('/')}?name=%E0%A4%A&x=%zz`);
    expect(refusal.status).toBe(400);
    expectNoDetail(refusal.body, '%zz');
    expect(calls.authenticate).toBe(0);
  });

  it('answers a query parameter without a name ("=value") with 400', async () => {
    const refusal = await TestClient.expectRefused(`${running.url('/')}?=orphan`);
    expect(refusal.status).toBe(400);
    expect(calls.authenticate).toBe(0);
  });

  it('still accepts a valid upgrade sent by hand (the helper is sound)', async () => {
    const response = await rawUpgrade(running, '/');
    expect(response.status).toBe(101);
  });
});

describe('maxConnections (SPEC 3.4, Riverside B8)', () => {
  it('answers a second handshake with 503 and a short body while the first connection stays usable', async () => {
    running = await startRiverside({ maxConnections: 1 }, [LimitedHandler]);
    const first = await running.connect('/limited');
    const refusal = await TestClient.expectRefused(running.url('/limited'));
    expect(refusal.status).toBe(503);
    expectNoDetail(refusal.body);
    first.send({ content: 'Hello' });
    expect(await first.expectMessage()).toEqual({ content: 'Hello' });
  });

  it('answers 503 before @OnAuthenticate runs', async () => {
    running = await startRiverside({ maxConnections: 1 }, [LimitedHandler]);
    await running.connect('/limited');
    await TestClient.expectRefused(running.url('/limited'));
    expect(calls.authenticate).toBe(1);
  });

  it('accepts a new connection once the first one has closed', async () => {
    running = await startRiverside({ maxConnections: 1 }, [LimitedHandler]);
    const stats = running.app.get(RiversideStats);
    const first = await running.connect('/limited');
    await first.close();
    await eventually(() => expect(stats.currentConnections).toBe(0));
    const second = await running.connect('/limited');
    second.send({ content: 'again' });
    expect(await second.expectMessage()).toEqual({ content: 'again' });
  });

  it('gives the slot of a handshake refused by @OnAuthenticate back', async () => {
    running = await startRiverside({ maxConnections: 1 }, [ScriptedHandler]);
    script = () => {
      throw AuthError.unauthorized();
    };
    expect((await TestClient.expectRefused(running.url('/'))).status).toBe(401);
    script = () => ({ userId: 'admitted' });
    const client = await running.connect('/');
    expect((await sessionOf(client)).userId).toBe('admitted');
  });

  it('gives the slot of a client that left during an async @OnAuthenticate back, and never initialises it', async () => {
    gated.calls = gated.settled = 0;
    gated.inits = [];
    running = await startRiverside({ maxConnections: 1 }, [GatedHandler]);
    const leaving = new WebSocket(running.url('/gated'));
    leaving.on('error', () => {});
    await eventually(() => expect(gated.calls).toBe(1));
    leaving.terminate();

    // The slot frees when the server sees the socket close, a moment after the client drops it.
    let staying: TestClient | undefined;
    const deadline = Date.now() + 2000;
    while (staying === undefined) {
      try {
        staying = await running.connect('/gated');
      } catch (error) {
        if (!(error instanceof HandshakeRefusedError && error.status === 503) || Date.now() > deadline) throw error;
      }
    }
    expect((await sessionOf(staying)).userId).toBe('user-2');

    gated.release();
    await eventually(() => expect(gated.settled).toBe(2));
    expect(gated.inits).toEqual(['user-2']);
    expect(running.app.get(RiversideStats).currentConnections).toBe(1);
  });
});

describe('handshakes in flight', () => {
  it('hand bytes a client pipelined behind its handshake to the handler after the upgrade', async () => {
    running = await startRiverside({}, [SlowEchoHandler]);
    const { head, text } = await pipelinedUpgrade(running, '/slow-echo', maskedTextFrame('{"early":true}'));
    expect(head).toMatch(/^HTTP\/1\.1 101 /);
    expect(JSON.parse(text)).toEqual({ early: true });
  });

  it('are cut by app.close() instead of holding shutdown until @OnAuthenticate settles', async () => {
    gated.calls = gated.settled = 0;
    gated.inits = [];
    running = await startRiverside({}, [GatedHandler]);
    const pending = new WebSocket(running.url('/gated'));
    const outcome = new Promise<string>((resolve) => {
      pending.once('open', () => resolve('upgraded'));
      pending.once('error', () => resolve('failed'));
    });
    await eventually(() => expect(gated.calls).toBe(1));
    const closed = running.close().then(() => 'closed');
    const hanging = new Promise<string>((resolve) => setTimeout(resolve, 2000, 'still closing after 2 s').unref());
    expect(await Promise.race([closed, hanging])).toBe('closed');
    expect(await outcome).toBe('failed');
    gated.release();
    await eventually(() => expect(gated.settled).toBe(1));
    expect(gated.inits).toEqual([]);
  });
});

describe('a connection storm past maxConnections (SPEC 3.4, 14.2)', () => {
  beforeEach(() => {
    storm.authenticate = storm.init = storm.terminate = 0;
  });

  /** 30 concurrent handshakes against maxConnections 5 and a 50 ms @OnAuthenticate. */
  async function runStorm() {
    running = await startRiverside({ maxConnections: 5 }, [SlowAuthHandler]);
    const stats = running.app.get(RiversideStats);
    const observed: number[] = [];
    const sampler = setInterval(() => observed.push(stats.currentConnections), 1);
    const outcomes = await Promise.allSettled(Array.from({ length: 30 }, () => TestClient.connect(running.url('/slow'))));
    clearInterval(sampler);
    const accepted = outcomes.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
    const statuses = outcomes.flatMap((outcome) =>
      outcome.status === 'rejected' ? [(outcome.reason as HandshakeRefusedError).status] : [],
    );
    return { stats, observed, accepted, statuses };
  }

  it('accepts exactly maxConnections handshakes and answers every other one with 503', async () => {
    const { accepted, statuses, stats } = await runStorm();
    try {
      expect(accepted).toHaveLength(5);
      expect(statuses).toEqual(Array(25).fill(503));
      expect(storm.authenticate).toBe(5);
      await eventually(() => expect(storm.init).toBe(5));
      expect(stats.rejections[503]).toBe(25);
    } finally {
      for (const client of accepted) client.ws.terminate();
    }
  });

  it('keeps currentConnections between 0 and maxConnections, back to 0 once the clients close', async () => {
    const { accepted, observed, stats } = await runStorm();
    expect(stats.currentConnections).toBe(5);
    await Promise.all(accepted.map((client) => client.close()));
    await eventually(() => expect(stats.currentConnections).toBe(0));
    expect(Math.min(...observed, stats.currentConnections)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...observed)).toBeLessThanOrEqual(5);
  });

  it('runs @OnTerminate only for the accepted connections', async () => {
    const { accepted } = await runStorm();
    await Promise.all(accepted.map((client) => client.close()));
    await eventually(() => expect(storm.terminate).toBe(5));
    expect(storm.init).toBe(5);
  });
});
