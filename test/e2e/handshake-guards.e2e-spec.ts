import {
  type CanActivate,
  Controller,
  type ExecutionContext,
  Get,
  Injectable,
  type INestApplication,
  Module,
  Req,
  UnauthorizedException,
  UseGuards,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AuthGuard, PassportModule, PassportStrategy } from '@nestjs/passport';
import { ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import type { IncomingMessage } from 'node:http';
import { createHmac } from 'node:crypto';
import { ExtractJwt, Strategy } from 'passport-jwt';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AuthRequest,
  bearerTokenFromSubprotocol,
  OnAuthenticate,
  OnMessage,
  RiversideHandler,
  RiversideModule,
  RiversideServer,
  type Session,
} from 'nestjs-riverside';
import { TestClient } from 'nestjs-riverside/testing';
import { RecordingLogger, type RunningApp, startRiverside } from '../support/riverside-app.js';

// SPEC 15.4, issue 9 point 6: HTTP guards on @OnAuthenticate run on the upgrade request, in an
// 'http' execution context, before the 101; the same passport AuthGuard an HTTP controller uses.

const SECRET = 'riverside-test-secret';

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** An HS256 JWT, signed the way jsonwebtoken does, with node:crypto. */
function signJwt(payload: Record<string, unknown>): string {
  const signed = `${base64url({ alg: 'HS256', typ: 'JWT' })}.${base64url(payload)}`;
  return `${signed}.${createHmac('sha256', SECRET).update(signed).digest('base64url')}`;
}

const now = () => Math.floor(Date.now() / 1000);

@Injectable()
class JwtStrategy extends PassportStrategy(Strategy) {
  constructor() {
    super({
      // The Authorization header for HTTP clients and servers; the `bearer.<token>`
      // subprotocol for browsers, whose WebSocket API cannot set headers.
      jwtFromRequest: ExtractJwt.fromExtractors([ExtractJwt.fromAuthHeaderAsBearerToken(), bearerTokenFromSubprotocol]),
      secretOrKey: SECRET,
    });
  }

  validate(payload: { sub: string; name: string }) {
    return { id: payload.sub, name: payload.name };
  }
}

@Controller()
class MeController {
  @Get('me')
  @UseGuards(AuthGuard('jwt'))
  me(@Req() req: { user: unknown }) {
    return req.user;
  }
}

@RiversideHandler({ path: '/secure', subprotocols: ['chat'] })
class SecureHandler {
  @OnAuthenticate()
  @UseGuards(AuthGuard('jwt'))
  authenticate(req: AuthRequest) {
    const user = req.user as { id: string; name: string };
    return { userId: user.id, state: { name: user.name } };
  }

  @OnMessage()
  onMessage(_message: unknown, session: Session<{ name: string }>) {
    return { userId: session.userId, name: session.state.name };
  }
}

@Module({
  imports: [PassportModule, RiversideModule.forRoot({ port: 0, host: '127.0.0.1' })],
  controllers: [MeController],
  providers: [JwtStrategy, SecureHandler],
})
class JwtAppModule {}

describe("passport-jwt's AuthGuard('jwt') at the handshake", () => {
  let nest: INestApplication | null = null;
  afterEach(async () => {
    await nest?.close();
    nest = null;
  });

  async function start() {
    nest = await NestFactory.create(JwtAppModule, { logger: new RecordingLogger() });
    await nest.listen(0, '127.0.0.1');
    const server = nest.get(RiversideServer);
    const address = nest.getHttpServer().address() as { port: number };
    return { wsUrl: server.url('/secure'), httpUrl: `http://127.0.0.1:${address.port}/me` };
  }

  it('valid token in the Authorization header: 101, and @OnAuthenticate sees req.user (as the HTTP route does)', async () => {
    const { wsUrl, httpUrl } = await start();
    const token = signJwt({ sub: 'u1', name: 'Ann', exp: now() + 60 });
    const http = await fetch(httpUrl, { headers: { authorization: `Bearer ${token}` } });
    expect(await http.json()).toEqual({ id: 'u1', name: 'Ann' });

    const client = await TestClient.connect(wsUrl, { bearer: token });
    client.send({});
    expect(await client.expectMessage()).toEqual({ userId: 'u1', name: 'Ann' });
    client.ws.terminate();
  });

  it('valid token in the bearer.<token> subprotocol: 101, the 101 selects the app subprotocol, never the token', async () => {
    const { wsUrl } = await start();
    const token = signJwt({ sub: 'u2', name: 'Bo', exp: now() + 60 });
    const client = await TestClient.connect(wsUrl, { subprotocols: ['chat', `bearer.${token}`] });
    expect(client.protocol).toBe('chat');
    client.send({});
    expect(await client.expectMessage()).toEqual({ userId: 'u2', name: 'Bo' });
    client.ws.terminate();
  });

  it('expired token: 401, as the HTTP route answers', async () => {
    const { wsUrl, httpUrl } = await start();
    const token = signJwt({ sub: 'u1', name: 'Ann', exp: now() - 10 });
    expect((await fetch(httpUrl, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
    expect((await TestClient.expectRefused(wsUrl, { bearer: token })).status).toBe(401);
  });

  it('no token, or a token signed with another key: 401', async () => {
    const { wsUrl } = await start();
    expect((await TestClient.expectRefused(wsUrl)).status).toBe(401);
    const forged = signJwt({ sub: 'u1', name: 'Ann', exp: now() + 60 }).replace(/\.[^.]+$/, '.AAAA');
    expect((await TestClient.expectRefused(wsUrl, { bearer: forged })).status).toBe(401);
  });
});

// ---- the 'http' execution context at the handshake --------------------------------------------

/** What the guards observed, for the assertions. */
const seen: Record<string, unknown>[] = [];

@Injectable()
class InspectingGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<IncomingMessage & { query: Record<string, unknown>; ip: string; user?: unknown }>();
    const res = context.switchToHttp().getResponse<{ setHeader(name: string, value: string): void }>();
    seen.push({
      type: context.getType(),
      handler: context.getHandler().name,
      class: context.getClass().name,
      url: req.url,
      query: req.query,
      ip: req.ip,
      header: req.headers['x-team'],
    });
    if (req.query.deny === 'false') return false;
    if (req.query.deny === 'challenge') {
      res.setHeader('WWW-Authenticate', 'Bearer realm="riverside"');
      throw new UnauthorizedException();
    }
    if (req.query.deny === 'bug') throw new Error('guard bug');
    req.user = { team: req.headers['x-team'] };
    return true;
  }
}

@Injectable()
class ClassLevelGuard implements CanActivate {
  canActivate(): boolean {
    seen.push({ classLevel: true });
    return true;
  }
}

@RiversideHandler({ path: '/inspect' })
@UseGuards(ClassLevelGuard)
class InspectHandler {
  @OnAuthenticate()
  @UseGuards(InspectingGuard)
  authenticate(req: AuthRequest) {
    return { userId: String((req.user as { team: string }).team) };
  }

  @OnMessage()
  onMessage(_message: unknown, session: Session) {
    return { userId: session.userId };
  }
}

describe("the handshake guard's 'http' context", () => {
  let app: RunningApp | null = null;
  afterEach(async () => {
    await app?.close();
    app = null;
  });

  it('has the upgrade request (url, Express-style query, ip, headers, writable user); only method-level guards run', async () => {
    seen.length = 0;
    app = await startRiverside({}, [InspectHandler, InspectingGuard, ClassLevelGuard]);
    const client = await app.connect('/inspect', { query: { a: 'x y', deny: 'no' }, headers: { 'x-team': 'blue' } });
    expect(seen).toEqual([
      {
        type: 'http',
        handler: 'authenticate',
        class: 'InspectHandler',
        url: '/inspect?a=x+y&deny=no',
        query: { a: 'x y', deny: 'no' },
        ip: '127.0.0.1',
        header: 'blue',
      },
    ]);
    client.send({});
    expect(await client.expectMessage()).toEqual({ userId: 'blue' });
    // The class-level guard protects messages, not the handshake.
    expect(seen.at(-1)).toEqual({ classLevel: true });
  });

  it('false -> 403; an HttpException -> its status, with the WWW-Authenticate the guard set; another error -> 500', async () => {
    app = await startRiverside({}, [InspectHandler, InspectingGuard, ClassLevelGuard]);
    expect((await TestClient.expectRefused(app.url('/inspect'), { query: { deny: 'false' } })).status).toBe(403);
    const challenged = await TestClient.expectRefused(app.url('/inspect'), { query: { deny: 'challenge' } });
    expect(challenged.status).toBe(401);
    expect(challenged.headers['www-authenticate']).toBe('Bearer realm="riverside"');
    expect((await TestClient.expectRefused(app.url('/inspect'), { query: { deny: 'bug' } })).status).toBe(500);
    expect(app.logger.errors().filter((line) => line.includes('guard bug'))).toHaveLength(1);
  });
});

// ---- @nestjs/throttler on messages ----------------------------------------------------------

/** ThrottlerGuard for Riverside messages: limits per user, read from the Session. */
@Injectable()
class SessionThrottlerGuard extends ThrottlerGuard {
  protected override async getTracker(session: Record<string, unknown>): Promise<string> {
    return `user:${(session as unknown as Session).userId}`;
  }

  protected override getRequestResponse(context: ExecutionContext) {
    const session = context.switchToWs().getClient<Session>();
    return { req: session as unknown as Record<string, unknown>, res: {} as Record<string, unknown> };
  }
}

@RiversideHandler({ path: '/throttled' })
class ThrottledHandler {
  @OnAuthenticate()
  authenticate(req: AuthRequest) {
    return { userId: String(req.queries.user) };
  }

  @OnMessage()
  @UseGuards(SessionThrottlerGuard)
  onMessage(message: { n: number }) {
    return { ok: message.n };
  }
}

describe('@nestjs/throttler on @OnMessage', () => {
  let app: RunningApp | null = null;
  afterEach(async () => {
    await app?.close();
    app = null;
  });

  it('limits messages per user across that user\'s sessions, answering 429 as an error frame', async () => {
    app = await startRiverside({}, [ThrottledHandler], [
      ThrottlerModule.forRoot({ throttlers: [{ ttl: 60_000, limit: 2 }], setHeaders: false }) as never,
    ]);
    const first = await app.connect('/throttled', { query: { user: 'ann' } });
    const second = await app.connect('/throttled', { query: { user: 'ann' } });
    const other = await app.connect('/throttled', { query: { user: 'bob' } });
    first.send({ n: 1 });
    expect(await first.expectMessage()).toEqual({ ok: 1 });
    second.send({ n: 2 });
    expect(await second.expectMessage()).toEqual({ ok: 2 });
    first.send({ n: 3 });
    expect(await first.expectMessage()).toEqual({ error: { status: 429, message: 'ThrottlerException: Too Many Requests' } });
    other.send({ n: 4 });
    expect(await other.expectMessage()).toEqual({ ok: 4 });
    expect(first.ws.readyState).toBe(1);
  });
});

// ---- @nestjs/throttler's ThrottlerGuard, unchanged, at the handshake -----------------------------

@RiversideHandler({ path: '/limited' })
class LimitedHandshakeHandler {
  @OnAuthenticate()
  @UseGuards(ThrottlerGuard)
  authenticate() {
    return { userId: 'anyone' };
  }
}

describe("@nestjs/throttler's ThrottlerGuard at the handshake", () => {
  let app: RunningApp | null = null;
  afterEach(async () => {
    await app?.close();
    app = null;
  });

  it('limits upgrades per ip (req.ip): over the limit -> 429 with Retry-After', async () => {
    app = await startRiverside({}, [LimitedHandshakeHandler], [
      ThrottlerModule.forRoot({ throttlers: [{ ttl: 60_000, limit: 2 }] }) as never,
    ]);
    await app.connect('/limited');
    await app.connect('/limited');
    const refused = await TestClient.expectRefused(app.url('/limited'));
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
  });
});
