import 'reflect-metadata';
import { Controller, Get, type INestApplication, Module, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { SubscribeMessage, WebSocketGateway, type WsResponse } from '@nestjs/websockets';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type AuthRequest,
  InvalidOptionsError,
  OnAuthenticate,
  OnMessage,
  RiversideAdapter,
  RiversideHandler,
  RiversideModule,
  RiversideServer,
  RiversideStats,
  type RiversideModuleOptions,
} from 'nestjs-riverside';
import { TestClient, type TestClientOptions } from 'nestjs-riverside/testing';
import type { WebSocket } from 'ws';
import { EchoHandler } from '../support/echo-handlers.js';
import { fetchRaw } from '../support/http.js';
import { eventually, OpenedApps, RecordingLogger, type RunningApp, startRiverside } from '../support/riverside-app.js';
import { closeCodeOf, maskedTextFrame, muteClient } from '../support/mute-client.js';
import { CERT_PATH, KEY_PATH } from '../support/tls-fixture.js';

// SPEC 2 (server, HTTP surface, adapter) and 14.1 (graceful shutdown), as a client sees them.

@RiversideHandler({ path: '/ws' })
class WsPathEchoHandler {
  @OnMessage()
  onMessage(message: unknown) {
    return { riverside: message };
  }
}

@Controller()
class AppController {
  @Get('hello')
  hello() {
    return 'hello from a controller';
  }
}

/** Writes raw bytes to host:port and returns everything the server sends back before it closes. */
function rawExchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ port, host: '127.0.0.1' }, () => socket.write(bytes));
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
  });
}

/** Resolves with the error a connection attempt fails with. */
async function connectionError(url: string, options: TestClientOptions = {}): Promise<NodeJS.ErrnoException> {
  try {
    const client = await TestClient.connect(url, options);
    client.ws.terminate();
  } catch (error) {
    return error as NodeJS.ErrnoException;
  }
  throw new Error(`Expected connecting to ${url} to fail, but it opened`);
}

const opened = new OpenedApps();

afterEach(() => opened.closeAll());

async function start(options: RiversideModuleOptions, handlers: Type<unknown>[] = [EchoHandler]): Promise<RunningApp> {
  return opened.track(await startRiverside(options, handlers));
}

/** NestFactory.create with express, listening on a free loopback port. */
async function startHttpApp(
  module: Type<unknown>,
  setup: (app: INestApplication) => void = () => {},
): Promise<{ app: INestApplication; httpPort: number; logger: RecordingLogger }> {
  const logger = new RecordingLogger();
  const app = opened.track(await NestFactory.create(module, { logger, abortOnError: false }));
  setup(app);
  await app.listen(0, '127.0.0.1');
  const httpPort = ((app.getHttpServer() as Server).address() as AddressInfo).port;
  return { app, httpPort, logger };
}

describe('standalone server (SPEC 2.1)', () => {
  it('listens on its own port under NestFactory.createApplicationContext', async () => {
    const app = await start({});
    const client = await opened.connect(app.url('/'));
    client.send({ hello: 'standalone' });
    expect(await client.expectMessage()).toEqual({ hello: 'standalone' });
  });

  it('listens on a port of its own beside the HTTP app of NestFactory.create', async () => {
    @Module({
      imports: [RiversideModule.forRoot({ port: 0, host: '127.0.0.1' })],
      controllers: [AppController],
      providers: [WsPathEchoHandler],
    })
    class AppModule {}
    const { app, httpPort } = await startHttpApp(AppModule);
    const riverside = app.get(RiversideServer);
    expect(riverside.address().port).not.toBe(httpPort);

    expect((await fetchRaw(`http://127.0.0.1:${httpPort}/hello`)).body).toBe('hello from a controller');
    const client = await opened.connect(riverside.url('/ws'));
    client.send('hi');
    expect(await client.expectMessage()).toEqual({ riverside: 'hi' });
  });

  it('serves several @RiversideHandler classes on different paths from one port', async () => {
    @RiversideHandler({ path: '/a' })
    class AHandler {
      @OnMessage()
      onMessage(message: unknown) {
        return { a: message };
      }
    }
    @RiversideHandler({ path: '/b' })
    class BHandler {
      @OnMessage()
      onMessage(message: unknown) {
        return { b: message };
      }
    }
    const app = await start({}, [AHandler, BHandler]);
    const [a, b] = await Promise.all([opened.connect(app.url('/a')), opened.connect(app.url('/b'))]);
    a.send(1);
    b.send(2);
    expect(await a.expectMessage()).toEqual({ a: 1 });
    expect(await b.expectMessage()).toEqual({ b: 2 });
  });

  it('accepts a handler path with a trailing slash', async () => {
    const app = await start({}, [WsPathEchoHandler]);
    const client = await opened.connect(app.url('/ws/'));
    client.send('slash');
    expect(await client.expectMessage()).toEqual({ riverside: 'slash' });
  });
});

describe('HTTP surface of the standalone server (SPEC 2.2, 2.3)', () => {
  it('answers GET /health with 200 text/plain OK', async () => {
    const app = await start({});
    const answer = await fetchRaw(app.httpUrl('/health'));
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(answer.body).toBe('OK');
  });

  it('answers a POST to /health with 404, as only GET is routed', async () => {
    const app = await start({});
    const answer = await fetchRaw(app.httpUrl('/health'), { method: 'POST' });
    expect(answer.status).toBe(404);
  });

  it('answers an unknown path with 404 and a short body, no stack', async () => {
    const app = await start({});
    const answer = await fetchRaw(app.httpUrl('/no/such/page'));
    expect(answer.status).toBe(404);
    expect(answer.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(answer.body).toBe('Not Found');
  });

  it('answers a plain GET on a handler path with 426 and Upgrade: websocket', async () => {
    const app = await start({}, [WsPathEchoHandler]);
    const answer = await fetchRaw(app.httpUrl('/ws'));
    expect(answer.status).toBe(426);
    expect(answer.headers.upgrade).toBe('websocket');
    expect(answer.headers.connection).toBe('Upgrade');
    expect(answer.body).toBe('Upgrade Required');
  });

  it('refuses a WebSocket upgrade on an unknown path with 404', async () => {
    const app = await start({}, [WsPathEchoHandler]);
    const refusal = await TestClient.expectRefused(app.url('/elsewhere'));
    expect(refusal.status).toBe(404);
    expect(refusal.body).toBe('Not Found');
  });

  it('refuses a malformed upgrade (no Sec-WebSocket-Key) with 400 and a short body', async () => {
    const app = await start({});
    const answer = await rawExchange(
      app.server.address().port,
      'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(answer.endsWith('\r\n\r\nBad Request')).toBe(true);
  });

  it('hands non-WebSocket requests to a custom router, which replaces /health', async () => {
    const app = await start({
      router: (req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`router saw ${req.method} ${req.url}`);
      },
    });
    expect((await fetchRaw(app.httpUrl('/health'))).body).toBe('router saw GET /health');
    expect((await fetchRaw(app.httpUrl('/page?x=1'))).body).toBe('router saw GET /page?x=1');
  });

  it('keeps handler paths for itself when a custom router is set', async () => {
    const app = await start({ router: (_req, res) => res.end('router') }, [WsPathEchoHandler]);
    expect((await fetchRaw(app.httpUrl('/ws'))).status).toBe(426);
    const client = await opened.connect(app.url('/ws'));
    client.send('through');
    expect(await client.expectMessage()).toEqual({ riverside: 'through' });
  });

  it('answers 500 with no detail, and logs once, when the custom router throws', async () => {
    const app = await start({
      router: () => {
        throw new Error('router exploded at /secret/path');
      },
    });
    const answer = await fetchRaw(app.httpUrl('/page'));
    expect(answer.status).toBe(500);
    expect(answer.body).toBe('Internal Server Error');
    expect(app.logger.errors()).toEqual(['The router option threw: router exploded at /secret/path']);
  });
});

describe("shared mode, port 'http' (SPEC 2.1)", () => {
  @Module({
    imports: [RiversideModule.forRoot({ port: 'http' })],
    controllers: [AppController],
    providers: [WsPathEchoHandler],
  })
  class SharedModule {}

  it("serves the handler path on the Nest HTTP server's port", async () => {
    const { app, httpPort } = await startHttpApp(SharedModule);
    expect(app.get(RiversideServer).address().port).toBe(httpPort);
    const client = await opened.connect(`ws://127.0.0.1:${httpPort}/ws`);
    client.send('shared');
    expect(await client.expectMessage()).toEqual({ riverside: 'shared' });
  });

  it("keeps the app's controllers answering on the same port", async () => {
    const { httpPort } = await startHttpApp(SharedModule);
    const answer = await fetchRaw(`http://127.0.0.1:${httpPort}/hello`);
    expect(answer.status).toBe(200);
    expect(answer.body).toBe('hello from a controller');
  });

  it('answers a plain GET on a handler path with 426 and Upgrade: websocket', async () => {
    const { httpPort } = await startHttpApp(SharedModule);
    const answer = await fetchRaw(`http://127.0.0.1:${httpPort}/ws`);
    expect(answer.status).toBe(426);
    expect(answer.headers.upgrade).toBe('websocket');
  });

  it('refuses an upgrade on a path no handler serves with 404', async () => {
    const { httpPort } = await startHttpApp(SharedModule);
    const refusal = await TestClient.expectRefused(`ws://127.0.0.1:${httpPort}/elsewhere`);
    expect(refusal.status).toBe(404);
  });

  it('fails the boot under NestFactory.createApplicationContext, which has no HTTP server', async () => {
    @Module({ imports: [RiversideModule.forRoot({ port: 'http' })], providers: [WsPathEchoHandler] })
    class ContextModule {}
    const error = await NestFactory.createApplicationContext(ContextModule, {
      logger: false,
      abortOnError: false,
    }).then(
      (app) => {
        opened.track(app);
        throw new Error('Expected the boot to fail');
      },
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as Error).message).toBe(
      "RiversideModule: port 'http' shares the Nest HTTP server, but this application has none " +
        '(NestFactory.createApplicationContext). Use a port number, or NestFactory.create().',
    );
  });

  it("takes its upgrade listener off the app's HTTP server at shutdown", async () => {
    const { app } = await startHttpApp(SharedModule);
    const httpServer = app.getHttpServer() as Server;
    expect(httpServer.listenerCount('upgrade')).toBe(1);
    await app.close();
    expect(httpServer.listenerCount('upgrade')).toBe(0);
  });
});

describe('TLS (SPEC 2.5)', () => {
  const tls = { cert: CERT_PATH, key: KEY_PATH };

  it('accepts wss:// connections', async () => {
    const app = await start({ tls });
    expect(app.url('/')).toMatch(/^wss:\/\//);
    const client = await opened.connect(app.url('/'), { ws: { rejectUnauthorized: false } });
    client.send({ secure: true });
    expect(await client.expectMessage()).toEqual({ secure: true });
  });

  it('presents the configured certificate', async () => {
    const app = await start({ tls });
    const client = await opened.connect(app.url('/'), { ws: { ca: readFileSync(CERT_PATH) } });
    client.send('verified');
    expect(await client.expectMessage()).toBe('verified');
  });

  it('answers GET /health over https', async () => {
    const app = await start({ tls });
    const answer = await fetchRaw(app.httpUrl('/health'), { ca: readFileSync(CERT_PATH) });
    expect(app.httpUrl('/health')).toMatch(/^https:\/\//);
    expect(answer.status).toBe(200);
    expect(answer.body).toBe('OK');
  });

  it('does not speak plain ws:// on the TLS port', async () => {
    const app = await start({ tls });
    const error = await connectionError(app.url('/').replace(/^wss:/, 'ws:'));
    expect(error).toBeInstanceOf(Error);
  });
});

describe('RiversideAdapter with plain gateways (SPEC 2.4)', () => {
  @WebSocketGateway({ path: '/gw' })
  class PingGateway {
    @SubscribeMessage('ping')
    ping(_client: unknown, data: unknown): WsResponse<unknown> {
      return { event: 'pong', data };
    }
  }

  it('lets a gateway answer on the Nest HTTP port while a Riverside handler works on its own port', async () => {
    @Module({
      imports: [RiversideModule.forRoot({ port: 0, host: '127.0.0.1' })],
      providers: [WsPathEchoHandler, PingGateway],
    })
    class AppModule {}
    const { app, httpPort } = await startHttpApp(AppModule, (nest) => nest.useWebSocketAdapter(new RiversideAdapter(nest)));

    const gateway = await opened.connect(`ws://127.0.0.1:${httpPort}/gw`);
    gateway.send({ event: 'ping', data: 42 });
    expect(await gateway.expectMessage()).toEqual({ event: 'pong', data: 42 });

    const handler = await opened.connect(app.get(RiversideServer).url('/ws'));
    handler.send('beside');
    expect(await handler.expectMessage()).toEqual({ riverside: 'beside' });
  });

  it("serves a gateway and a Riverside handler on one server in port 'http' mode", async () => {
    @Module({
      imports: [RiversideModule.forRoot({ port: 'http' })],
      providers: [WsPathEchoHandler, PingGateway],
    })
    class AppModule {}
    const { httpPort } = await startHttpApp(AppModule, (nest) => nest.useWebSocketAdapter(new RiversideAdapter(nest)));

    const gateway = await opened.connect(`ws://127.0.0.1:${httpPort}/gw`);
    const handler = await opened.connect(`ws://127.0.0.1:${httpPort}/ws`);
    gateway.send({ event: 'ping', data: 'g' });
    handler.send('h');
    expect(await gateway.expectMessage()).toEqual({ event: 'pong', data: 'g' });
    expect(await handler.expectMessage()).toEqual({ riverside: 'h' });
  });

  it("routes a gateway path written without a leading slash, as WsAdapter does, in port 'http' mode", async () => {
    @WebSocketGateway({ path: 'bare' })
    class BarePathGateway {
      @SubscribeMessage('ping')
      ping(_client: unknown, data: unknown): WsResponse<unknown> {
        return { event: 'pong', data };
      }
    }
    @Module({ imports: [RiversideModule.forRoot({ port: 'http' })], providers: [WsPathEchoHandler, BarePathGateway] })
    class AppModule {}
    const { httpPort } = await startHttpApp(AppModule, (nest) => nest.useWebSocketAdapter(new RiversideAdapter(nest)));
    const gateway = await opened.connect(`ws://127.0.0.1:${httpPort}/bare`);
    gateway.send({ event: 'ping', data: 'bare' });
    expect(await gateway.expectMessage()).toEqual({ event: 'pong', data: 'bare' });
  });

  it("closes gateway and handler clients alike when a port 'http' app closes", async () => {
    @Module({
      imports: [RiversideModule.forRoot({ port: 'http' })],
      providers: [WsPathEchoHandler, PingGateway],
    })
    class AppModule {}
    const { app, httpPort } = await startHttpApp(AppModule, (nest) => nest.useWebSocketAdapter(new RiversideAdapter(nest)));
    const gateway = await opened.connect(`ws://127.0.0.1:${httpPort}/gw`);
    const handler = await opened.connect(`ws://127.0.0.1:${httpPort}/ws`);
    await app.close();
    expect(await handler.expectClose()).toEqual({ code: 1001, reason: 'server shutting down' });
    await gateway.expectClose();
  });

  it("gives a gateway on Riverside's server its Origin check, maxPayload and connection limit", async () => {
    @Module({
      imports: [
        RiversideModule.forRoot({ port: 'http', maxConnections: 1, allowedOrigins: ['https://app.example.com'], ws: { maxPayload: 1024 } }),
      ],
      providers: [WsPathEchoHandler, PingGateway],
    })
    class AppModule {}
    const { app, httpPort } = await startHttpApp(AppModule, (nest) => nest.useWebSocketAdapter(new RiversideAdapter(nest)));
    const stats = app.get(RiversideStats);
    const url = `ws://127.0.0.1:${httpPort}/gw`;

    expect((await TestClient.expectRefused(url, { headers: { origin: 'https://evil.example' } })).status).toBe(403);
    const gateway = await opened.connect(url, { headers: { origin: 'https://app.example.com' } });
    // The one slot is the gateway client's: neither a handler nor another gateway client gets in.
    expect((await TestClient.expectRefused(`ws://127.0.0.1:${httpPort}/ws`)).status).toBe(503);
    expect((await TestClient.expectRefused(url)).status).toBe(503);
    expect(stats.rejections).toMatchObject({ 403: 1, 503: 2 });

    gateway.sendRaw(JSON.stringify({ event: 'ping', data: 'x'.repeat(2000) }));
    expect((await gateway.expectClose()).code).toBe(1009);
    // Its slot is free again once it closed.
    await eventually(async () => {
      const next = await opened.connect(url);
      next.send({ event: 'ping', data: 1 });
      expect(await next.expectMessage()).toEqual({ event: 'pong', data: 1 });
    });
  });

  it("gives a gateway on Riverside's server its ws.closeTimeout: a client that does not answer the close frame is dropped", async () => {
    const CLOSE_TIMEOUT = 300;
    @WebSocketGateway({ path: '/gw' })
    class ClosingGateway {
      @SubscribeMessage('bye')
      bye(client: WebSocket) {
        client.close(4000, 'bye');
      }
    }
    @Module({
      imports: [RiversideModule.forRoot({ port: 'http', ws: { closeTimeout: CLOSE_TIMEOUT } })],
      providers: [WsPathEchoHandler, ClosingGateway],
    })
    class AppModule {}
    const { httpPort } = await startHttpApp(AppModule, (nest) => nest.useWebSocketAdapter(new RiversideAdapter(nest)));
    const client = await muteClient(httpPort, '/gw');
    try {
      const sent = performance.now();
      client.socket.write(maskedTextFrame(JSON.stringify({ event: 'bye' })));
      const endedAt = await Promise.race([
        client.ended,
        new Promise<number>((_, reject) => setTimeout(() => reject(new Error('the gateway still holds the socket 5 s after its close')), 5000)),
      ]);
      expect(closeCodeOf(client.frames)).toBe(4000);
      expect(endedAt - sent).toBeGreaterThanOrEqual(CLOSE_TIMEOUT - 50);
    } finally {
      client.socket.destroy();
    }
  });

  it('closes gateway clients with 1001 at shutdown, as it closes its own connections', async () => {
    @Module({ imports: [RiversideModule.forRoot({ port: 'http' })], providers: [WsPathEchoHandler, PingGateway] })
    class AppModule {}
    const { app, httpPort } = await startHttpApp(AppModule, (nest) => nest.useWebSocketAdapter(new RiversideAdapter(nest)));
    const gateway = await opened.connect(`ws://127.0.0.1:${httpPort}/gw`);
    gateway.send({ event: 'ping', data: 'up' });
    expect(await gateway.expectMessage()).toEqual({ event: 'pong', data: 'up' });
    await app.get(RiversideServer).close();
    expect(await gateway.expectClose()).toEqual({ code: 1001, reason: 'server shutting down' });
  });

  it("fails the boot when a gateway claims a Riverside handler's path in port 'http' mode", async () => {
    @WebSocketGateway({ path: '/ws' })
    class ClashingGateway {
      @SubscribeMessage('ping')
      ping() {
        return 'pong';
      }
    }
    @Module({
      imports: [RiversideModule.forRoot({ port: 'http' })],
      providers: [WsPathEchoHandler, ClashingGateway],
    })
    class AppModule {}
    const error = await startHttpApp(AppModule, (nest) => nest.useWebSocketAdapter(new RiversideAdapter(nest))).then(
      () => new Error('Expected the boot to fail'),
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as Error).message).toBe(
      'A @WebSocketGateway and a Riverside handler both claim path "/ws" on the Nest HTTP server. Give the gateway its own path.',
    );
  });
});

describe('shutdown (SPEC 14.1)', () => {
  it("closes every client with 1001 'server shutting down'", async () => {
    const app = await start({});
    const [first, second] = await Promise.all([opened.connect(app.url('/')), opened.connect(app.url('/'))]);
    await app.app.close();
    expect(await first.expectClose(1001)).toEqual({ code: 1001, reason: 'server shutting down' });
    expect(await second.expectClose(1001)).toEqual({ code: 1001, reason: 'server shutting down' });
  });

  it('closes Riverside clients with 1001 when a NestFactory.create app closes', async () => {
    @Module({ imports: [RiversideModule.forRoot({ port: 0, host: '127.0.0.1' })], providers: [EchoHandler] })
    class AppModule {}
    const { app } = await startHttpApp(AppModule);
    const client = await opened.connect(app.get(RiversideServer).url('/'));
    await app.close();
    expect(await client.expectClose(1001)).toEqual({ code: 1001, reason: 'server shutting down' });
  });

  it("closes shared-mode clients with 1001 when the app closes", async () => {
    @Module({ imports: [RiversideModule.forRoot({ port: 'http' })], providers: [EchoHandler] })
    class AppModule {}
    const { app, httpPort } = await startHttpApp(AppModule);
    const client = await opened.connect(`ws://127.0.0.1:${httpPort}/`);
    await app.close();
    expect(await client.expectClose(1001)).toEqual({ code: 1001, reason: 'server shutting down' });
  });

  it('stops accepting connections once closed', async () => {
    const app = await start({});
    const url = app.url('/');
    await app.app.close();
    expect((await connectionError(url)).code).toBe('ECONNREFUSED');
  });

  it('frees the port, so a new app can listen on it', async () => {
    const first = await start({});
    const { port } = first.server.address();
    await first.app.close();
    const second = await start({ port });
    expect(second.server.address().port).toBe(port);
    const client = await opened.connect(second.url('/'));
    client.send('again');
    expect(await client.expectMessage()).toBe('again');
  });

  it('is idempotent: closing twice, or twice at once, resolves and leaves the port free', async () => {
    const app = await start({});
    const { port } = app.server.address();
    await Promise.all([app.app.close(), app.app.close()]);
    await app.app.close();
    await app.server.close();
    const next = await start({ port });
    expect(next.server.address().port).toBe(port);
  });
});

describe('debug option (SPEC 10.3, Riverside show_debug_logs)', () => {
  @RiversideHandler()
  class AliceHandler {
    @OnAuthenticate()
    authenticate(_request: AuthRequest) {
      return { userId: 'alice', sessionId: 'abcdef0123' };
    }
    @OnMessage()
    onMessage() {}
  }

  it('logs a debug line per connection event when debug is true', async () => {
    const app = await start({ debug: true }, [AliceHandler]);
    const client = await opened.connect(app.url('/'));
    await client.close();
    await eventually(() =>
      expect(app.logger.entries.filter((entry) => entry.level === 'debug').map((entry) => entry.message)).toEqual([
        'Session:alice:abcdef connected',
        'Session:alice:abcdef terminated: remote',
      ]),
    );
  });

  it('logs no per-connection debug line by default', async () => {
    const app = await start({}, [AliceHandler]);
    const client = await opened.connect(app.url('/'));
    await client.close();
    await eventually(() => expect(app.server.registry.connections.size).toBe(0));
    expect(app.logger.entries.filter((entry) => entry.level === 'debug')).toEqual([]);
  });
});
