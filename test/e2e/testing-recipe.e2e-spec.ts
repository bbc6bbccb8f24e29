import 'reflect-metadata';
import { type INestApplication, Module, type Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { OnMessage, RiversideHandler, RiversideModule, RiversideServer } from 'nestjs-riverside';
import { TestClient, useFreePort } from 'nestjs-riverside/testing';
import { RecordingLogger } from '../support/riverside-app.js';

// useFreePort (nestjs-riverside/testing): an existing AppModule, whatever port it names, run
// in a test on a free port through @nestjs/testing, and reached with TestClient.

@RiversideHandler({ path: '/ws' })
class EchoHandler {
  @OnMessage()
  onMessage(message: unknown) {
    return message;
  }
}

const apps: INestApplication[] = [];
const clients: TestClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.ws.terminate();
  for (const app of apps.splice(0)) await app.close();
});

async function start(appModule: Type<unknown>, extra?: Parameters<typeof useFreePort>[1]): Promise<INestApplication> {
  const moduleRef = await useFreePort(Test.createTestingModule({ imports: [appModule] }), extra).compile();
  const app = moduleRef.createNestApplication({ logger: new RecordingLogger() });
  apps.push(app);
  await app.listen(0, '127.0.0.1');
  return app;
}

async function echoes(app: INestApplication): Promise<unknown> {
  const client = await TestClient.connect(app.get(RiversideServer).url('/ws'));
  clients.push(client);
  client.send({ ping: 1 });
  return client.expectMessage();
}

describe('useFreePort', () => {
  it('moves an AppModule with a fixed port to a free one on loopback, twice side by side', async () => {
    @Module({ imports: [RiversideModule.forRoot({ port: 3000, maxConnections: 7 })], providers: [EchoHandler] })
    class AppModule {}
    const first = await start(AppModule);
    const second = await start(AppModule);
    for (const app of [first, second]) {
      const address = app.get(RiversideServer).address();
      expect(address.address).toBe('127.0.0.1');
      expect(address.port).not.toBe(3000);
      expect(await echoes(app)).toEqual({ ping: 1 });
    }
    expect(first.get(RiversideServer).address().port).not.toBe(second.get(RiversideServer).address().port);
    // Every other option is the app's own.
    expect(first.get(RiversideServer).options.maxConnections).toBe(7);
  });

  it("keeps port: 'http': the WebSockets share the free port of app.listen(0)", async () => {
    @Module({ imports: [RiversideModule.forRoot({ port: 'http' })], providers: [EchoHandler] })
    class AppModule {}
    const app = await start(AppModule);
    const httpPort = (app.getHttpServer().address() as AddressInfo).port;
    expect(app.get(RiversideServer).url('/ws')).toBe(`ws://127.0.0.1:${httpPort}/ws`);
    expect(await echoes(app)).toEqual({ ping: 1 });
  });

  it('applies to options built by forRootAsync, and applies extra options', async () => {
    @Module({
      imports: [RiversideModule.forRootAsync({ useFactory: async () => ({ port: 3000, idleTimeout: 60_000 }) })],
      providers: [EchoHandler],
    })
    class AppModule {}
    const app = await start(AppModule, { idleTimeout: 300 });
    expect(app.get(RiversideServer).address().port).not.toBe(3000);
    const client = await TestClient.connect(app.get(RiversideServer).url('/ws'));
    clients.push(client);
    expect(await client.expectClose(3003)).toMatchObject({ code: 3003 });
  });
});
