import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AuthError,
  type AuthRequest,
  type AuthResult,
  OnAuthenticate,
  OnInit,
  OnMessage,
  RiversideHandler,
  type Session,
} from 'nestjs-riverside';
import { type HandshakeRefusedError, TestClient, type TestClientOptions } from 'nestjs-riverside/testing';
import { type RunningApp, startRiverside } from '../support/riverside-app.js';

// Riverside's test/auth/*.exs (reference B9, B10, B11), ported as real assertions on what the
// client sees: status, WWW-Authenticate, body, and the echo after a successful handshake.
// Each handler echoes, as Riverside's do, and @OnInit reports who the session belongs to: what
// they share is in ReportsUserAndEchoes, so that each shows only its own @OnAuthenticate.

abstract class ReportsUserAndEchoes {
  @OnInit()
  init(session: Session) {
    return { userId: session.userId };
  }

  @OnMessage()
  echo(message: unknown, session: Session) {
    session.send(message);
  }
}

// test/auth/basic_test.exs: TestAuthBasicHandler
@RiversideHandler({ path: '/basic' })
class BasicAuthHandler extends ReportsUserAndEchoes {
  @OnAuthenticate()
  authenticate(req: AuthRequest): AuthResult {
    const { username, password } = req.basic;
    if (username === 'valid_example' && password === 'foobar') return { userId: 'valid_example' };
    throw AuthError.unauthorized().withBasicRealm('example.org');
  }
}

// test/auth/bearer_token_test.exs: TestAuthBearerTokenHandler, plus the RFC 6750 error code
// Riverside's README promises for a token that was presented and is wrong.
@RiversideHandler({ path: '/bearer' })
class BearerAuthHandler extends ReportsUserAndEchoes {
  @OnAuthenticate()
  authenticate(req: AuthRequest): AuthResult {
    if (req.bearerToken === 'valid_example') return { userId: 1 };
    if (req.bearerToken === '') throw AuthError.unauthorized().withBearerRealm('example.org');
    throw AuthError.unauthorized().withBearerRealm('example.org', 'invalid_token');
  }
}

// test/auth/query_test.exs: TestAuthQueryHandler
@RiversideHandler({ path: '/query' })
class QueryAuthHandler extends ReportsUserAndEchoes {
  @OnAuthenticate()
  authenticate(req: AuthRequest): AuthResult {
    if (req.queries.user === 'valid_example') return { userId: 'valid_example' };
    throw new AuthError(400);
  }
}

const BASIC_CHALLENGE = 'Basic realm="example.org"';
const BEARER_CHALLENGE = 'Bearer realm="example.org"';
const BEARER_INVALID_TOKEN = 'Bearer realm="example.org", error="invalid_token"';

function authorization(value: string): TestClientOptions {
  return { headers: { authorization: value } };
}

function base64(text: string): string {
  return Buffer.from(text).toString('base64');
}

/** A refused handshake: the status and challenge, and a short body without internals. */
function expectRefusal(refusal: HandshakeRefusedError, status: number, challenge: string | undefined): void {
  expect(refusal.status).toBe(status);
  expect(refusal.headers['www-authenticate']).toBe(challenge);
  expect(refusal.headers.upgrade).toBeUndefined();
  expect(refusal.body.length).toBeLessThanOrEqual(40);
  expect(refusal.body).not.toMatch(/\n\s*at |AuthError/);
}

/** The successful row of each Riverside test: connect, then {"content":"Hello"} comes back. */
async function expectEcho(client: TestClient, userId: string): Promise<void> {
  expect(await client.expectMessage()).toEqual({ userId });
  client.send({ content: 'Hello' });
  expect(await client.expectMessage()).toEqual({ content: 'Hello' });
}

let running: RunningApp;
beforeEach(async () => {
  running = await startRiverside({}, [BasicAuthHandler, BearerAuthHandler, QueryAuthHandler]);
});
afterEach(() => running?.close());

describe('Basic authentication (Riverside B9)', () => {
  const url = () => running.url('/basic');

  it('refuses an Authorization header of another scheme (Bearer) with 401 and the Basic challenge', async () => {
    expectRefusal(await TestClient.expectRefused(url(), authorization('Bearer xxxx')), 401, BASIC_CHALLENGE);
  });

  it('refuses credentials that are not strict base64 ("Basic bad_token") with 401 and the Basic challenge', async () => {
    expectRefusal(await TestClient.expectRefused(url(), authorization('Basic bad_token')), 401, BASIC_CHALLENGE);
  });

  it('refuses a wrong username with 401 and the Basic challenge', async () => {
    const refusal = await TestClient.expectRefused(url(), { basic: { username: 'invalid', password: 'foobar' } });
    expectRefusal(refusal, 401, BASIC_CHALLENGE);
  });

  it('refuses a wrong password with 401 and the Basic challenge', async () => {
    const refusal = await TestClient.expectRefused(url(), { basic: { username: 'valid_example', password: 'invalid' } });
    expectRefusal(refusal, 401, BASIC_CHALLENGE);
  });

  it('accepts the correct credentials, and the connection echoes {"content":"Hello"}', async () => {
    const client = await running.connect('/basic', { basic: { username: 'valid_example', password: 'foobar' } });
    await expectEcho(client, 'valid_example');
  });

  it('refuses a handshake without an Authorization header with 401 and the Basic challenge', async () => {
    expectRefusal(await TestClient.expectRefused(url()), 401, BASIC_CHALLENGE);
  });

  it('refuses decoded credentials without a ":" with 401', async () => {
    const refusal = await TestClient.expectRefused(url(), authorization(`Basic ${base64('valid_examplefoobar')}`));
    expectRefusal(refusal, 401, BASIC_CHALLENGE);
  });

  it('reads the scheme case-insensitively ("basic")', async () => {
    const client = await running.connect('/basic', authorization(`basic ${base64('valid_example:foobar')}`));
    await expectEcho(client, 'valid_example');
  });
});

describe('Bearer token authentication (Riverside B10)', () => {
  const url = () => running.url('/bearer');

  it('refuses an Authorization header of another scheme (Basic) with 401 and the plain Bearer challenge', async () => {
    expectRefusal(await TestClient.expectRefused(url(), authorization('Basic xxxx')), 401, BEARER_CHALLENGE);
  });

  it('refuses a wrong token with 401 and error="invalid_token" after a comma (RFC 6750)', async () => {
    expectRefusal(await TestClient.expectRefused(url(), { bearer: 'bad_token' }), 401, BEARER_INVALID_TOKEN);
  });

  it('accepts the correct token, and the connection echoes {"content":"Hello"}', async () => {
    const client = await running.connect('/bearer', { bearer: 'valid_example' });
    await expectEcho(client, '1');
  });

  it('refuses a handshake without an Authorization header with 401 and the plain Bearer challenge', async () => {
    expectRefusal(await TestClient.expectRefused(url()), 401, BEARER_CHALLENGE);
  });

  it('reads "Bearer a b" (three parts) as no token at all', async () => {
    expectRefusal(await TestClient.expectRefused(url(), authorization('Bearer valid_example extra')), 401, BEARER_CHALLENGE);
  });

  it('reads the scheme case-insensitively ("bearer")', async () => {
    const client = await running.connect('/bearer', authorization('bearer valid_example'));
    await expectEcho(client, '1');
  });
});

describe('query-string authentication (Riverside B11)', () => {
  const url = () => running.url('/query');

  it('refuses ?user=invalid with 400 and no WWW-Authenticate', async () => {
    expectRefusal(await TestClient.expectRefused(url(), { query: { user: 'invalid' } }), 400, undefined);
  });

  it('refuses a handshake without a query string with 400', async () => {
    expectRefusal(await TestClient.expectRefused(url()), 400, undefined);
  });

  it('accepts ?user=valid_example, and the connection echoes {"content":"Hello"}', async () => {
    const client = await running.connect('/query', { query: { user: 'valid_example' } });
    await expectEcho(client, 'valid_example');
  });

  it('refuses ?user without a value (the flag is true, not a name) with 400', async () => {
    expectRefusal(await TestClient.expectRefused(`${url()}?user`), 400, undefined);
  });

  it('accepts a percent-encoded ?user=valid%5Fexample, compared after decoding', async () => {
    const client = await TestClient.connect(`${url()}?user=valid%5Fexample`);
    try {
      await expectEcho(client, 'valid_example');
    } finally {
      client.ws.terminate();
    }
  });
});
