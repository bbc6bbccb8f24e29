import {
  type ArgumentsHost,
  BadRequestException,
  createParamDecorator,
  Module,
  type CallHandler,
  Catch,
  type CanActivate,
  type ExceptionFilter,
  type ExecutionContext,
  Injectable,
  type NestInterceptor,
  type PipeTransform,
  SetMetadata,
  UseFilters,
  UseGuards,
  UseInterceptors,
  UsePipes,
  ValidationPipe,
} from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_PIPE, NestFactory, Reflector } from '@nestjs/core';
import { ConnectedSocket, MessageBody, WsException } from '@nestjs/websockets';
import { IsInt, IsString, Min, MinLength } from 'class-validator';
import { Observable, interval, map, of, take, tap } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type AuthRequest,
  DeliveryService,
  Frame,
  OnAuthenticate,
  RiversideModule,
  OnInfo,
  OnMessage,
  OnTerminate,
  RiversideHandler,
  Session,
  type TerminateReason,
} from 'nestjs-riverside';
import { eventually, RecordingLogger, type RunningApp, running, startRiverside } from '../support/riverside-app.js';

// SPEC 15.1-15.3, issue 9 points 1-3 and 5: Nest's guards, pipes, interceptors and filters
// on @OnMessage / @OnInfo, through real sockets, with Nest's own enhancer classes.

let app: RunningApp | null = null;
afterEach(async () => {
  await app?.close();
  app = null;
});

/** What handlers and enhancers did, in order. */
const calls: string[] = [];

// ---- a deny guard: refusals are frames, the connection stays open ---------------------------

@Injectable()
class DenyNamedGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const data = context.switchToWs().getData<{ text?: string }>();
    return data.text !== 'forbidden';
  }
}

@RiversideHandler({ path: '/deny' })
class DenyHandler {
  @OnMessage()
  @UseGuards(DenyNamedGuard)
  onMessage(message: { text: string }) {
    calls.push(`handled ${message.text}`);
    return { echo: message.text };
  }
}

describe('guards on @OnMessage', () => {
  it('a guard returning false stops the message, answers one error frame and keeps the connection open', async () => {
    calls.length = 0;
    app = await startRiverside({}, [DenyHandler, DenyNamedGuard]);
    const client = await app.connect('/deny');
    client.send({ text: 'forbidden' });
    expect(await client.expectMessage()).toEqual({ error: { message: 'Forbidden resource' } });
    client.send({ text: 'fine' });
    expect(await client.expectMessage()).toEqual({ echo: 'fine' });
    expect(calls).toEqual(['handled fine']);
    expect(client.ws.readyState).toBe(1);
  });
});

// ---- roles guard with Reflector and @SetMetadata ---------------------------------------------

const Roles = (...roles: string[]) => SetMetadata('roles', roles);

@Injectable()
class RolesGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}
  canActivate(context: ExecutionContext): boolean {
    const required = this.reflector.getAllAndOverride<string[] | undefined>('roles', [context.getHandler(), context.getClass()]);
    if (!required) return true;
    const session = context.switchToWs().getClient<Session>();
    expect(context.getType()).toBe('ws');
    expect(context.getClass()).toBe(AdminHandler);
    return required.includes(session.userId.startsWith('admin') ? 'admin' : 'user');
  }
}

@RiversideHandler({ path: '/admin' })
@UseGuards(RolesGuard)
class AdminHandler {
  @OnAuthenticate()
  authenticate(req: AuthRequest) {
    return { userId: String(req.queries.user) };
  }

  @OnMessage()
  @Roles('admin')
  onMessage(message: unknown, session: Session) {
    return { ok: session.userId, message };
  }

  @OnInfo()
  onInfo(info: unknown) {
    // No @Roles here: the class-level guard runs on @OnInfo too, and lets it through.
    return { info };
  }
}

describe('a Reflector roles guard (class-level @UseGuards, method-level @SetMetadata)', () => {
  it('reads the roles of the handler method, with the Session as the ws client', async () => {
    app = await startRiverside({}, [AdminHandler, RolesGuard]);
    const user = await app.connect('/admin', { query: { user: 'bob' } });
    user.send({ hello: 1 });
    expect(await user.expectMessage()).toEqual({ error: { message: 'Forbidden resource' } });
    const admin = await app.connect('/admin', { query: { user: 'admin-ann' } });
    admin.send({ hello: 2 });
    expect(await admin.expectMessage()).toEqual({ ok: 'admin-ann', message: { hello: 2 } });
    await app.app.get(DeliveryService).info({ user: 'bob' }, 'ping');
    expect(await user.expectMessage()).toEqual({ info: 'ping' });
  });
});

// ---- global APP_GUARD --------------------------------------------------------------------------

@Injectable()
class GlobalDenyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    calls.push(`global guard ${context.getType()}`);
    return (context.switchToWs().getData<{ pass?: boolean }>().pass ?? false) === true;
  }
}

@RiversideHandler({ path: '/global' })
class PlainHandler {
  @OnMessage()
  onMessage(message: unknown) {
    return { got: message };
  }
}

describe('global guards (APP_GUARD)', () => {
  it('run on a handler that names no guard itself', async () => {
    calls.length = 0;
    app = await startRiverside({}, [PlainHandler, { provide: APP_GUARD, useClass: GlobalDenyGuard }]);
    const client = await app.connect('/global');
    client.send({ pass: false });
    expect(await client.expectMessage()).toEqual({ error: { message: 'Forbidden resource' } });
    client.send({ pass: true });
    expect(await client.expectMessage()).toEqual({ got: { pass: true } });
    expect(calls).toEqual(['global guard ws', 'global guard ws']);
  });
});

// ---- enhancer order ------------------------------------------------------------------------------

function logGuard(name: string) {
  @Injectable()
  class LogGuard implements CanActivate {
    canActivate(): boolean {
      calls.push(`guard ${name}`);
      return true;
    }
  }
  return LogGuard;
}
function logInterceptor(name: string) {
  @Injectable()
  class LogInterceptor implements NestInterceptor {
    intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
      calls.push(`interceptor ${name} before`);
      return next.handle().pipe(tap(() => calls.push(`interceptor ${name} after`)));
    }
  }
  return LogInterceptor;
}
function logPipe(name: string) {
  @Injectable()
  class LogPipe implements PipeTransform {
    transform(value: unknown): unknown {
      calls.push(`pipe ${name}`);
      return value;
    }
  }
  return LogPipe;
}
const ClassGuard = logGuard('class');
const MethodGuard = logGuard('method');
const ClassInterceptor = logInterceptor('class');
const MethodInterceptor = logInterceptor('method');
const ClassPipe = logPipe('class');
const MethodPipe = logPipe('method');

@RiversideHandler({ path: '/order' })
@UseGuards(ClassGuard)
@UseInterceptors(ClassInterceptor)
@UsePipes(ClassPipe)
class OrderHandler {
  @OnMessage()
  @UsePipes(MethodPipe)
  @UseInterceptors(MethodInterceptor)
  @UseGuards(MethodGuard)
  onMessage(message: unknown) {
    calls.push('handler');
    return message;
  }
}

describe('enhancer order', () => {
  it('is Nest\'s: guards, then interceptors, then pipes, then the handler; class before method', async () => {
    calls.length = 0;
    app = await startRiverside({}, [OrderHandler]);
    const client = await app.connect('/order');
    client.send({ n: 1 });
    expect(await client.expectMessage()).toEqual({ n: 1 });
    expect(calls).toEqual([
      'guard class',
      'guard method',
      'interceptor class before',
      'interceptor method before',
      'pipe class',
      'pipe method',
      'handler',
      'interceptor method after',
      'interceptor class after',
    ]);
  });
});

// ---- interceptors that map and time the reply -----------------------------------------------------

@Injectable()
class WrapInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(map((data) => ({ data })));
  }
}

@Injectable()
class TimingInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const started = Date.now();
    return next.handle().pipe(map((reply) => ({ ...(reply as object), tookMs: Date.now() - started })));
  }
}

@RiversideHandler({ path: '/intercept' })
class InterceptedHandler {
  @OnMessage()
  @UseInterceptors(TimingInterceptor, WrapInterceptor)
  async onMessage(message: { wait: number }) {
    await new Promise((resolve) => setTimeout(resolve, message.wait));
    return 'done';
  }
}

describe('interceptors', () => {
  it('map the reply and time the handler', async () => {
    app = await startRiverside({}, [InterceptedHandler]);
    const client = await app.connect('/intercept');
    client.send({ wait: 60 });
    const reply = (await client.expectMessage()) as { data: string; tookMs: number };
    expect(reply.data).toBe('done');
    expect(reply.tookMs).toBeGreaterThanOrEqual(55);
  });
});

// ---- filters ---------------------------------------------------------------------------------------

class QuotaExceeded extends Error {
  constructor(readonly limit: number) {
    super('quota exceeded');
  }
}

@Catch(QuotaExceeded)
class QuotaFilter implements ExceptionFilter {
  catch(exception: QuotaExceeded, host: ArgumentsHost) {
    const session = host.switchToWs().getClient<Session>();
    expect(session).toBeInstanceOf(Session);
    session.send({ quota: exception.limit, data: host.switchToWs().getData() });
  }
}

@RiversideHandler({ path: '/filter' })
@UseFilters(QuotaFilter)
class FilteredHandler {
  @OnMessage()
  onMessage(message: { kind: string }) {
    if (message.kind === 'quota') throw new QuotaExceeded(10);
    if (message.kind === 'ws') throw new WsException('plain ws error');
    if (message.kind === 'object') throw new WsException({ code: 'E1', detail: 'object error' });
    if (message.kind === 'bug') throw new Error('a bug');
    return { ok: true };
  }
}

describe('exception filters and the default error frame', () => {
  it('a @UseFilters filter handles its exception with the Session as the ws client; the connection stays open', async () => {
    app = await startRiverside({}, [FilteredHandler]);
    const client = await app.connect('/filter');
    client.send({ kind: 'quota' });
    expect(await client.expectMessage()).toEqual({ quota: 10, data: { kind: 'quota' } });
    client.send({ kind: 'ok' });
    expect(await client.expectMessage()).toEqual({ ok: true });
  });

  it('a WsException the filter does not catch becomes the default error frame', async () => {
    app = await startRiverside({}, [FilteredHandler]);
    const client = await app.connect('/filter');
    client.send({ kind: 'ws' });
    expect(await client.expectMessage()).toEqual({ error: { message: 'plain ws error' } });
    client.send({ kind: 'object' });
    expect(await client.expectMessage()).toEqual({ error: { code: 'E1', detail: 'object error' } });
    client.send({ kind: 'ok' });
    expect(await client.expectMessage()).toEqual({ ok: true });
  });

  it('any other exception keeps closing with 1011, logged once', async () => {
    app = await startRiverside({}, [FilteredHandler]);
    const client = await app.connect('/filter');
    client.send({ kind: 'bug' });
    expect((await client.expectClose()).code).toBe(1011);
    expect(app.logger.errors().filter((line) => line.includes('a bug'))).toHaveLength(1);
    expect(app.logger.errors()[0]).toContain('FilteredHandler.onMessage()');
  });
});

// ---- param decorators and ValidationPipe -------------------------------------------------------------

class SayDto {
  @IsString()
  @MinLength(1)
  text!: string;

  @IsInt()
  @Min(0)
  priority!: number;
}

@RiversideHandler({ path: '/params' })
class ParamsHandler {
  @OnMessage()
  onMessage(
    @MessageBody(new ValidationPipe({ transform: true })) body: SayDto,
    @MessageBody('text') text: string,
    @ConnectedSocket() session: Session,
  ) {
    return { isDto: body instanceof SayDto, text, isSession: session instanceof Session };
  }
}

describe('@MessageBody() and @ConnectedSocket() with ValidationPipe', () => {
  it('passes the validated DTO, a property of the message and the Session', async () => {
    app = await startRiverside({}, [ParamsHandler]);
    const client = await app.connect('/params');
    client.send({ text: 'hi', priority: 2 });
    expect(await client.expectMessage()).toEqual({ isDto: true, text: 'hi', isSession: true });
  });

  it('rejects a bad DTO with the validation messages in the error frame, and keeps the connection', async () => {
    app = await startRiverside({}, [ParamsHandler]);
    const client = await app.connect('/params');
    client.send({ text: '', priority: -1 });
    const reply = (await client.expectMessage()) as { error: { status: number; message: string[] } };
    expect(reply.error.status).toBe(400);
    expect(reply.error.message).toEqual(
      expect.arrayContaining(['text must be longer than or equal to 1 characters', 'priority must not be less than 0']),
    );
    client.send({ text: 'ok', priority: 0 });
    expect(await client.expectMessage()).toMatchObject({ isDto: true });
  });
});

@RiversideHandler({ path: '/method-pipe' })
class MethodPipeHandler {
  @OnMessage()
  @UsePipes(new ValidationPipe({ transform: true, exceptionFactory: () => new WsException('bad say') }))
  onMessage(message: SayDto, session: Session) {
    return { isDto: message instanceof SayDto, isSession: session instanceof Session };
  }
}

describe('@UsePipes on the plain (message, session) signature', () => {
  it('validates the message (the session is passed as it is)', async () => {
    app = await startRiverside({}, [MethodPipeHandler]);
    const client = await app.connect('/method-pipe');
    client.send({ text: 'x', priority: 1 });
    expect(await client.expectMessage()).toEqual({ isDto: true, isSession: true });
    client.send({ text: 5 });
    expect(await client.expectMessage()).toEqual({ error: { message: 'bad say' } });
  });
});

// ---- return values: Observables and raw frame lists --------------------------------------------------

@RiversideHandler({ path: '/stream' })
class StreamHandler {
  @OnMessage()
  onMessage(message: { count?: number; close?: boolean; forever?: boolean }) {
    if (message.forever) {
      // Emits once, never completes; records its teardown.
      return new Observable((subscriber) => {
        subscriber.next({ started: true });
        return () => calls.push('stream unsubscribed');
      });
    }
    if (message.close) return Frame.list({ bye: 1 }, Frame.text('raw'), Frame.close(4000, 'done'), { never: true });
    if (message.count !== undefined) {
      return interval(20).pipe(
        take(message.count),
        map((n) => ({ n })),
      );
    }
    return { next: true };
  }

  @OnTerminate()
  terminate(reason: TerminateReason) {
    calls.push(`terminated ${typeof reason === 'string' ? reason : reason.kind}`);
  }
}

describe('return values', () => {
  it('an Observable of three values arrives as three frames, before the reply to the next message', async () => {
    app = await startRiverside({}, [StreamHandler]);
    const client = await app.connect('/stream');
    client.send({ count: 3 });
    client.send({});
    expect(await client.expectMessages(4)).toEqual([{ n: 0 }, { n: 1 }, { n: 2 }, { next: true }]);
  });

  it('an Observable that never completes is unsubscribed when the connection closes, and @OnTerminate runs', async () => {
    calls.length = 0;
    app = await startRiverside({}, [StreamHandler]);
    const client = await app.connect('/stream');
    client.send({ forever: true });
    expect(await client.expectMessage()).toEqual({ started: true });
    await client.close(1000);
    await eventually(() => expect(calls).toEqual(['stream unsubscribed', 'terminated remote']));
  });

  it('a Frame.list ending in Frame.close sends its frames, then closes; frames after the close are not sent', async () => {
    app = await startRiverside({}, [StreamHandler]);
    const client = await app.connect('/stream');
    client.send({ close: true });
    expect(await client.expectMessage()).toEqual({ bye: 1 });
    const raw = await client.expectFrame();
    expect(raw.data.toString()).toBe('raw');
    expect(await client.expectClose()).toEqual({ code: 4000, reason: 'done' });
  });
});

// ---- correlation -------------------------------------------------------------------------------------

@RiversideHandler({ path: '/ack', replyRef: 'ref' })
class AckHandler {
  @OnMessage()
  @UseGuards(DenyNamedGuard)
  onMessage(message: { text: string }) {
    if (message.text === 'stream') return of({ part: 1 }, { part: 2 });
    return { echo: message.text };
  }
}

describe('@RiversideHandler({ replyRef })', () => {
  it('echoes the correlation field on replies, stream values and error frames', async () => {
    app = await startRiverside({}, [AckHandler, DenyNamedGuard]);
    const client = await app.connect('/ack');
    client.send({ text: 'hi', ref: 7 });
    expect(await client.expectMessage()).toEqual({ echo: 'hi', ref: 7 });
    client.send({ text: 'forbidden', ref: 'a' });
    expect(await client.expectMessage()).toEqual({ error: { message: 'Forbidden resource' }, ref: 'a' });
    client.send({ text: 'stream', ref: 'b' });
    expect(await client.expectMessages(2)).toEqual([{ part: 1, ref: 'b' }, { part: 2, ref: 'b' }]);
    client.send({ text: 'no ref' });
    expect(await client.expectMessage()).toEqual({ echo: 'no ref' });
  });
});

// ---- no enhancer at all: the direct call, with the same error frame ------------------------------

@RiversideHandler({ path: '/bare' })
class BareHandler {
  @OnMessage()
  async onMessage(message: { kind: string }) {
    if (message.kind === 'ws') throw new WsException('bare ws error');
    if (message.kind === 'http') throw new BadRequestException('bad input');
    if (message.kind === 'sync') return of({ a: 1 }, { a: 2 });
    return { ok: message.kind };
  }
}

describe('a handler without any enhancer', () => {
  it('answers a thrown WsException / 4xx HttpException with the error frame and keeps the connection', async () => {
    app = await startRiverside({}, [BareHandler]);
    const client = await app.connect('/bare');
    client.send({ kind: 'ws' });
    client.send({ kind: 'http' });
    client.send({ kind: 'sync' });
    client.send({ kind: 'after' });
    expect(await client.expectMessages(5)).toEqual([
      { error: { message: 'bare ws error' } },
      { error: { status: 400, message: 'bad input' } },
      { a: 1 },
      { a: 2 },
      { ok: 'after' },
    ]);
  });
});

// ---- the other global enhancers: APP_PIPE, app.useGlobalInterceptors(), and APP_FILTER -----------

@Injectable()
class MarkPipe implements PipeTransform {
  transform(value: unknown): unknown {
    return typeof value === 'object' && value !== null ? { ...value, piped: true } : value;
  }
}

@Catch()
class CatchEverythingFilter implements ExceptionFilter {
  catch(_exception: unknown, host: ArgumentsHost) {
    host.switchToWs().getClient<Session>().send({ caughtByGlobalFilter: true });
  }
}

@RiversideHandler({ path: '/globals' })
class GlobalsHandler {
  @OnMessage()
  onMessage(message: { boom?: boolean }) {
    if (message.boom) throw new Error('boom');
    return { got: message };
  }
}

describe('global pipes, interceptors and filters', () => {
  it("APP_PIPE and app.useGlobalInterceptors() apply; global filters do not (as for Nest's gateways): a bug still closes with 1011", async () => {
    @Module({
      imports: [RiversideModule.forRoot({ port: 0, host: '127.0.0.1' })],
      providers: [GlobalsHandler, { provide: APP_PIPE, useClass: MarkPipe }, { provide: APP_FILTER, useClass: CatchEverythingFilter }],
    })
    class GlobalsModule {}
    const logger = new RecordingLogger();
    const nest = await NestFactory.create(GlobalsModule, { logger });
    nest.useGlobalInterceptors(new WrapInterceptor());
    await nest.init();
    app = running(nest, logger);
    const client = await app.connect('/globals');
    client.send({ x: 1 });
    expect(await client.expectMessage()).toEqual({ data: { got: { x: 1, piped: true } } });
    client.send({ boom: true });
    expect((await client.expectClose()).code).toBe(1011);
  });
});

// ---- custom param decorators ---------------------------------------------------------------------

const SessionUser = createParamDecorator((_data: unknown, context: ExecutionContext) => {
  return `${context.getType()}:${context.switchToWs().getClient<Session>().userId}`;
});

@RiversideHandler({ path: '/custom-param' })
class CustomParamHandler {
  @OnMessage()
  onMessage(@SessionUser() user: string, @MessageBody('n') n: number) {
    return { user, n };
  }
}

describe('custom param decorators (createParamDecorator)', () => {
  it("get the 'ws' execution context", async () => {
    app = await startRiverside({}, [CustomParamHandler]);
    const client = await app.connect('/custom-param');
    client.send({ n: 3 });
    const reply = (await client.expectMessage()) as { user: string; n: number };
    expect(reply.n).toBe(3);
    expect(reply.user).toMatch(/^ws:[0-9a-f-]{36}$/);
  });
});
