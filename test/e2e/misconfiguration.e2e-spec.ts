import 'reflect-metadata';
import { Controller, Get, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DeliveryService,
  type DeliveryTarget,
  RiversideError,
  RiversideHealthIndicator,
  RiversideModule,
} from 'nestjs-riverside';
import { freePort } from '../support/brokers.js';
import { EchoHandler } from '../support/echo-handlers.js';
import { OpenedApps, RecordingLogger } from '../support/riverside-app.js';

// Setups that used to go wrong quietly, or with an error naming neither Riverside nor the
// option: each now fails the boot (or the call) with a message that names the fix.

const LISTEN = { port: 0, host: '127.0.0.1' } as const;
const opened = new OpenedApps();

afterEach(() => opened.closeAll());

describe('RiversideModule.forRoot imported twice', () => {
  it('fails the boot, naming the modules that import it and the fix', async () => {
    @Module({ imports: [RiversideModule.forRoot(LISTEN)] })
    class ChatModule {}
    @Module({ imports: [RiversideModule.forRoot(LISTEN), ChatModule], providers: [EchoHandler] })
    class AppModule {}

    const error = await opened.bootFailure(AppModule);
    expect(error).toBeInstanceOf(RiversideError);
    expect((error as RiversideError).code).toBe('RIVERSIDE_ERR_DUPLICATE_MODULE');
    expect(error.message).toBe(
      'RiversideModule.forRoot() is imported 2 times (by AppModule, ChatModule): each import would start its own server. ' +
        'Import it once, in the root module; it is global, so handlers and DeliveryService work in every module.',
    );
  });

  it('still boots one module imported once, with handlers in other modules', async () => {
    @Module({ providers: [EchoHandler] })
    class ChatModule {}
    @Module({ imports: [RiversideModule.forRoot(LISTEN), ChatModule] })
    class AppModule {}
    const app = await opened.boot(AppModule);
    const client = await opened.connectToApp(app);
    client.send({ ping: 1 });
    expect(await client.expectMessage()).toEqual({ ping: 1 });
  });
});

describe('the port Riverside listens on, taken again by the app', () => {
  it("fails the app's listen() with an error naming Riverside, the port and the option", async () => {
    const port = await freePort();
    @Module({ imports: [RiversideModule.forRoot({ port, host: '127.0.0.1' })], providers: [EchoHandler] })
    class AppModule {}
    const app = await NestFactory.create(AppModule, { logger: new RecordingLogger(), abortOnError: false });
    // Its listen() fails, so its HTTP server was never listening and closing it may reject.
    opened.track({ close: () => app.close().catch(() => undefined) });

    const error = (await app.listen(port, '127.0.0.1').then(
      () => new Error('listen() succeeded on a port Riverside holds'),
      (failure: unknown) => failure,
    )) as NodeJS.ErrnoException;
    expect(error.code).toBe('EADDRINUSE');
    expect(error.message).toBe(
      `listen EADDRINUSE: port ${port} is already taken by Riverside's WebSocket server (the "port" option of RiversideModule.forRoot). ` +
        `Give Riverside another port, or port: 'http' to serve WebSockets on the app's own port.`,
    );
  });
});

describe('RiversideHealthIndicator', () => {
  @Injectable()
  class StatusService {
    constructor(readonly indicator: RiversideHealthIndicator) {}
  }

  it('is injectable in any module without being listed in providers', async () => {
    @Controller()
    class StatusController {
      constructor(readonly indicator: RiversideHealthIndicator) {}
      @Get() status() {
        return this.indicator.isHealthy();
      }
    }
    @Module({ controllers: [StatusController] })
    class StatusModule {}
    @Module({ imports: [RiversideModule.forRoot(LISTEN), StatusModule], providers: [EchoHandler] })
    class AppModule {}
    const app = await opened.boot(AppModule);
    expect(app.get(StatusController).status()).toMatchObject({ riverside: { status: 'up', connections: 0 } });
  });

  it('works when also listed in a module\'s providers, reporting the same server', async () => {
    @Module({ imports: [RiversideModule.forRoot(LISTEN)], providers: [EchoHandler, RiversideHealthIndicator, StatusService] })
    class AppModule {}
    const app = await opened.boot(AppModule);
    const client = await opened.connectToApp(app);
    await expect.poll(() => app.get(StatusService).indicator.isHealthy()).toMatchObject({ riverside: { status: 'up', connections: 1 } });
  });
});

describe('a DeliveryTarget naming two recipients', () => {
  it('is refused with a TypeError naming the target and the fix, before anything is sent', async () => {
    @Module({ imports: [RiversideModule.forRoot(LISTEN)], providers: [EchoHandler] })
    class AppModule {}
    const app = await opened.boot(AppModule);
    const client = await opened.connectToApp(app, '/', { query: {} });
    const delivery = app.get(DeliveryService);
    const both = { user: 'ann', channel: 'lobby' } as unknown as DeliveryTarget;
    const expected =
      'Invalid DeliveryTarget {"user":"ann","channel":"lobby"}: name exactly one of { user }, { session: [userId, sessionId] } ' +
      'or { channel }; to reach several, deliver once per target.';
    expect(() => delivery.deliver(both, { hi: 1 })).toThrow(new TypeError(expected));
    expect(() => delivery.info(both, { hi: 1 })).toThrow(TypeError);
    expect(() => delivery.close(both)).toThrow(TypeError);
    expect(() => delivery.deliver({} as DeliveryTarget, 1)).toThrow(
      new TypeError(
        'Invalid DeliveryTarget {}: name exactly one of { user }, { session: [userId, sessionId] } or { channel }; to reach several, deliver once per target.',
      ),
    );
    expect(() => delivery.deliver(null as unknown as DeliveryTarget, 1)).toThrow(TypeError);
    await client.expectNoMessage(100);
  });
});
