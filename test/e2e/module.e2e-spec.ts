import 'reflect-metadata';
import { Inject, Injectable, type INestApplicationContext, Module, Scope } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type AuthRequest,
  DeliveryService,
  InvalidHandlerClassError,
  InvalidOptionsError,
  OnAuthenticate,
  OnMessage,
  RiversideHandler,
  RiversideModule,
  RiversideServer,
  type Session,
} from 'nestjs-riverside';
import { EchoHandler } from '../support/echo-handlers.js';
import { OpenedApps, RecordingLogger } from '../support/riverside-app.js';

// Boot-time behaviour of RiversideModule (SPEC 1.1, 1.3): options from forRoot / forRootAsync,
// handler discovery across modules, and every malformed handler failing NestFactory.

const LISTEN = { port: 0, host: '127.0.0.1' } as const;
const opened = new OpenedApps();

afterEach(() => opened.closeAll());

/** Whether a handler path answers an echo round trip. */
async function echoes(app: INestApplicationContext, path: string): Promise<unknown> {
  const client = await opened.connectToApp(app, path);
  client.send({ ping: path });
  return client.expectMessage();
}

describe('RiversideModule.forRoot', () => {
  it('boots and serves the handlers it discovers', async () => {
    @Module({ imports: [RiversideModule.forRoot(LISTEN)], providers: [EchoHandler] })
    class AppModule {}
    const app = await opened.boot(AppModule);
    expect(await echoes(app, '/')).toEqual({ ping: '/' });
  });

  it('fails NestFactory.createApplicationContext with an InvalidOptionsError naming the bad option', async () => {
    @Module({ imports: [RiversideModule.forRoot({ ...LISTEN, maxConnections: 0 })], providers: [EchoHandler] })
    class AppModule {}
    const error = await opened.bootFailure(AppModule);
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as InvalidOptionsError).option).toBe('maxConnections');
    expect(error.message).toBe('RiversideModule: invalid option "maxConnections": expected a positive integer, got 0.');
  });

  it('fails the boot when the codec option is a class whose instances are not codecs', async () => {
    class NotACodec {
      encode(message: unknown) {
        return String(message);
      }
    }
    @Module({ imports: [RiversideModule.forRoot({ ...LISTEN, codec: NotACodec as never })], providers: [EchoHandler] })
    class AppModule {}
    const error = await opened.bootFailure(AppModule);
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect(error.message).toBe(
      `RiversideModule: invalid option "codec": expected a codec with frameType ('text' | 'binary'), encode() and decode(), got function NotACodec.`,
    );
  });

  it('fails the boot when the port is taken, naming the port', async () => {
    @Module({ imports: [RiversideModule.forRoot(LISTEN)], providers: [EchoHandler] })
    class FirstModule {}
    const first = await opened.boot(FirstModule);
    const { port } = first.get(RiversideServer).address();
    @Module({ imports: [RiversideModule.forRoot({ ...LISTEN, port })], providers: [EchoHandler] })
    class SecondModule {}
    const error = await opened.bootFailure(SecondModule);
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect(error.message).toBe(
      `RiversideModule could not listen on port ${port} of 127.0.0.1: EADDRINUSE. Another process holds it: choose another port option.`,
    );
  });

  it('warns at boot when no provider is a @RiversideHandler', async () => {
    @Module({ imports: [RiversideModule.forRoot(LISTEN)] })
    class AppModule {}
    const logger = new RecordingLogger();
    await opened.boot(AppModule, logger);
    expect(logger.entries.filter((entry) => entry.level === 'warn').map((entry) => entry.message)).toEqual([
      "RiversideModule found no @RiversideHandler provider: add your handler class to a module's providers.",
    ]);
  });
});

describe('RiversideModule.forRootAsync', () => {
  const SETTINGS = Symbol('SETTINGS');
  interface Settings {
    readonly wsPath: string;
    readonly maxConnections: number;
  }
  const settingsModule = (settings: Settings) => {
    @Module({ providers: [{ provide: SETTINGS, useValue: settings }], exports: [SETTINGS] })
    class SettingsModule {}
    return SettingsModule;
  };

  it('takes its options from an injected config provider', async () => {
    @Module({
      imports: [
        RiversideModule.forRootAsync({
          imports: [settingsModule({ wsPath: '/from-config', maxConnections: 10 })],
          inject: [SETTINGS],
          useFactory: (settings: Settings) => ({ ...LISTEN, path: settings.wsPath, maxConnections: settings.maxConnections }),
        }),
      ],
      providers: [EchoHandler],
    })
    class AppModule {}
    const app = await opened.boot(AppModule);
    expect(await echoes(app, '/from-config')).toEqual({ ping: '/from-config' });
  });

  it('accepts an async factory', async () => {
    @Module({
      imports: [
        RiversideModule.forRootAsync({
          useFactory: async () => {
            await Promise.resolve();
            return { ...LISTEN, path: '/async' };
          },
        }),
      ],
      providers: [EchoHandler],
    })
    class AppModule {}
    const app = await opened.boot(AppModule);
    expect(await echoes(app, '/async')).toEqual({ ping: '/async' });
  });

  it('validates the options the factory returns, failing the boot', async () => {
    @Module({
      imports: [
        RiversideModule.forRootAsync({
          imports: [settingsModule({ wsPath: '/x', maxConnections: -3 })],
          inject: [SETTINGS],
          useFactory: (settings: Settings) => ({ ...LISTEN, maxConnections: settings.maxConnections }),
        }),
      ],
      providers: [EchoHandler],
    })
    class AppModule {}
    const error = await opened.bootFailure(AppModule);
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect(error.message).toBe('RiversideModule: invalid option "maxConnections": expected a positive integer, got -3.');
  });
});

describe('handler discovery', () => {
  it('finds a handler declared in a feature module', async () => {
    @RiversideHandler({ path: '/feature' })
    class FeatureHandler {
      @OnMessage()
      onMessage(message: unknown) {
        return { feature: message };
      }
    }
    @Module({ providers: [FeatureHandler] })
    class FeatureModule {}
    @Module({ imports: [RiversideModule.forRoot(LISTEN), FeatureModule] })
    class AppModule {}
    const app = await opened.boot(AppModule);
    const client = await opened.connectToApp(app, '/feature');
    client.send('hi');
    expect(await client.expectMessage()).toEqual({ feature: 'hi' });
  });

  it('serves a handler without a path on the module path option', async () => {
    @Module({ imports: [RiversideModule.forRoot({ ...LISTEN, path: '/default' })], providers: [EchoHandler] })
    class AppModule {}
    const app = await opened.boot(AppModule);
    expect(await echoes(app, '/default')).toEqual({ ping: '/default' });
  });

  it('rejects two handler classes on one path, naming both classes and the path', async () => {
    @RiversideHandler({ path: '/chat' })
    class ChatHandler {}
    @RiversideHandler({ path: '/chat/' })
    class LobbyHandler {}
    @Module({ imports: [RiversideModule.forRoot(LISTEN)], providers: [ChatHandler, LobbyHandler] })
    class AppModule {}
    const error = await opened.bootFailure(AppModule);
    expect(error).toBeInstanceOf(InvalidHandlerClassError);
    expect(error.message).toBe(
      'Handler classes "ChatHandler" and "LobbyHandler" both serve path "/chat". ' +
        'Give one of them another path: @RiversideHandler({ path: "/other" }).',
    );
  });

  it('rejects two distinct handler classes on one path even when they share a class name', async () => {
    const makeHandler = () => {
      @RiversideHandler({ path: '/same' })
      class SameNameHandler {}
      return SameNameHandler;
    };
    @Module({ imports: [RiversideModule.forRoot(LISTEN)], providers: [makeHandler(), makeHandler()] })
    class AppModule {}
    const error = await opened.bootFailure(AppModule);
    expect(error).toBeInstanceOf(InvalidHandlerClassError);
    expect(error.message).toBe(
      'Handler classes "SameNameHandler" and "SameNameHandler" both serve path "/same". ' +
        'Give one of them another path: @RiversideHandler({ path: "/other" }).',
    );
  });

  it('rejects a handler class with two bare @OnMessage() methods (two fallbacks), naming the class and both methods', async () => {
    @RiversideHandler()
    class TwoMessagesHandler {
      @OnMessage()
      first() {}
      @OnMessage()
      second() {}
    }
    @Module({ imports: [RiversideModule.forRoot(LISTEN)], providers: [TwoMessagesHandler] })
    class AppModule {}
    const error = await opened.bootFailure(AppModule);
    expect(error).toBeInstanceOf(InvalidHandlerClassError);
    expect(error.message).toBe(
      'Handler class "TwoMessagesHandler" has two fallback @OnMessage() methods, "first" and "second". ' +
        "Keep one bare @OnMessage(); give the other a route: @OnMessage('join') or @OnMessage({ type: 'join' }).",
    );
  });

  it('rejects a request-scoped handler class at boot', async () => {
    @RiversideHandler()
    @Injectable({ scope: Scope.REQUEST })
    class RequestScopedHandler {}
    @Module({ imports: [RiversideModule.forRoot(LISTEN)], providers: [RequestScopedHandler] })
    class AppModule {}
    const error = await opened.bootFailure(AppModule);
    expect(error).toBeInstanceOf(InvalidHandlerClassError);
    expect(error.message).toBe(
      'Handler class "RequestScopedHandler" is request- or transient-scoped (itself or through a dependency). ' +
        'A Riverside handler lives as long as the application: make it and its dependencies singletons.',
    );
  });

  it('rejects a handler class that depends on a request-scoped provider', async () => {
    @Injectable({ scope: Scope.REQUEST })
    class PerRequest {}
    @RiversideHandler()
    class DependentHandler {
      constructor(@Inject(PerRequest) readonly perRequest: PerRequest) {}
    }
    @Module({ imports: [RiversideModule.forRoot(LISTEN)], providers: [PerRequest, DependentHandler] })
    class AppModule {}
    const error = await opened.bootFailure(AppModule);
    expect(error).toBeInstanceOf(InvalidHandlerClassError);
    expect(error.message).toBe(
      'Handler class "DependentHandler" is request- or transient-scoped (itself or through a dependency). ' +
        'A Riverside handler lives as long as the application: make it and its dependencies singletons.',
    );
  });

  it('rejects a handler path without a leading slash, naming the class', async () => {
    @RiversideHandler({ path: 'chat' })
    class SlashlessHandler {}
    @Module({ imports: [RiversideModule.forRoot(LISTEN)], providers: [SlashlessHandler] })
    class AppModule {}
    const error = await opened.bootFailure(AppModule);
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect(error.message).toBe(
      'RiversideModule: invalid option "@RiversideHandler({ path }) of SlashlessHandler": ' +
        `expected a URL path starting with '/' (no query, fragment or spaces), got "chat".`,
    );
  });
});

describe('DeliveryService (global module)', () => {
  it('is injectable in a module that does not import RiversideModule and reaches a connected user', async () => {
    @RiversideHandler()
    class UserHandler {
      @OnAuthenticate()
      authenticate(request: AuthRequest) {
        return { userId: String(request.queries.user) };
      }
      @OnMessage()
      onMessage(_message: unknown, _session: Session) {}
    }
    @Injectable()
    class Notifier {
      constructor(@Inject(DeliveryService) readonly delivery: DeliveryService) {}
      notify(user: string, text: string): number {
        return this.delivery.deliver({ user }, { notification: text });
      }
    }
    @Module({ providers: [Notifier], exports: [Notifier] })
    class NotificationsModule {}
    @Module({ imports: [RiversideModule.forRoot(LISTEN), NotificationsModule], providers: [UserHandler] })
    class AppModule {}
    const app = await opened.boot(AppModule);
    const client = await opened.connectToApp(app, '/', { query: { user: 'alice' } });
    expect(app.get(Notifier).notify('alice', 'hello')).toBe(1);
    expect(await client.expectMessage()).toEqual({ notification: 'hello' });
  });
});
