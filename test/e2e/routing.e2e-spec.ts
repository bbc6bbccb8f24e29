import { Module, UseGuards, type CanActivate, Injectable } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidHandlerClassError, OnMessage, RiversideHandler, RiversideModule, type Session } from 'nestjs-riverside';
import { eventually, RecordingLogger, type RunningApp, startRiverside } from '../support/riverside-app.js';

// SPEC 15.3, issue 9 point 4: several @OnMessage per class, routed by a property name or one
// field value, compiled at boot; frames no route takes are invalid messages.

let app: RunningApp | null = null;
afterEach(async () => {
  await app?.close();
  app = null;
});

@Injectable()
class NoRoomZeroGuard implements CanActivate {
  canActivate(context: import('@nestjs/common').ExecutionContext): boolean {
    return context.switchToWs().getData<{ join: unknown }>().join !== 0;
  }
}

@RiversideHandler({ path: '/rooms' })
class RoomsHandler {
  @OnMessage('join')
  @UseGuards(NoRoomZeroGuard)
  join(message: { join: string }, session: Session) {
    session.join(message.join);
    return { joined: message.join };
  }

  @OnMessage({ type: 'say' })
  say(message: { text: string }) {
    return { said: message.text };
  }

  @OnMessage({ type: 7 })
  seven() {
    return { seven: true };
  }

  @OnMessage()
  other(message: unknown) {
    return { fallback: message };
  }
}

@RiversideHandler({ path: '/strict' })
class StrictHandler {
  @OnMessage('ping')
  ping() {
    return { pong: true };
  }
}

describe('routing @OnMessage methods', () => {
  it('sends each message to its route, in declaration order, and the rest to the fallback', async () => {
    app = await startRiverside({}, [RoomsHandler, NoRoomZeroGuard]);
    const client = await app.connect('/rooms');
    client.send({ join: 'lobby' });
    client.send({ type: 'say', text: 'hi' });
    client.send({ type: 7 });
    client.send({ type: '7' });
    client.send({ join: 0 });
    client.send('just a string');
    expect(await client.expectMessages(6)).toEqual([
      { joined: 'lobby' },
      { said: 'hi' },
      { seven: true },
      { fallback: { type: '7' } },
      { error: { message: 'Forbidden resource' } },
      { fallback: 'just a string' },
    ]);
  });

  it('only own properties route: an inherited "join" does not', async () => {
    app = await startRiverside({}, [RoomsHandler, NoRoomZeroGuard]);
    const client = await app.connect('/rooms');
    client.sendRaw('{"__proto__":{"join":"x"},"n":1}');
    expect(await client.expectMessage()).toMatchObject({ fallback: { n: 1 } });
  });

  it('a frame no route takes, without a fallback, is an invalid message (dropped by default)', async () => {
    app = await startRiverside({}, [StrictHandler]);
    const client = await app.connect('/strict');
    client.send({ nope: 1 });
    client.send({ ping: 1 });
    expect(await client.expectMessage()).toEqual({ pong: true });
    await eventually(() => expect(app!.server.stats.invalidFrames).toBe(1));
  });

  it("a frame no route takes closes with 3000 under invalidMessage: 'close'", async () => {
    app = await startRiverside({ invalidMessage: 'close' }, [StrictHandler]);
    const client = await app.connect('/strict');
    client.send({ nope: 1 });
    expect(await client.expectClose()).toEqual({ code: 3000, reason: 'invalid message' });
  });
});

async function bootFailure(handler: Function): Promise<Error> {
  @Module({ imports: [RiversideModule.forRoot({ port: 0, host: '127.0.0.1' })], providers: [handler as never] })
  class AppModule {}
  try {
    const context = await NestFactory.createApplicationContext(AppModule, { logger: new RecordingLogger(), abortOnError: false });
    await context.close();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the boot to fail');
}

describe('route boot errors', () => {
  it('two routes on the same property name', async () => {
    @RiversideHandler()
    class TwiceHandler {
      @OnMessage('join')
      a() {}
      @OnMessage('join')
      b() {}
    }
    const error = await bootFailure(TwiceHandler);
    expect(error).toBeInstanceOf(InvalidHandlerClassError);
    expect(error.message).toContain('Handler class "TwiceHandler": the routes of "a" and "b" can never be told apart');
  });

  it('two routes on the same field value, and a field route after a property route on that field', async () => {
    @RiversideHandler()
    class SameValueHandler {
      @OnMessage({ type: 'say' })
      a() {}
      @OnMessage({ type: 'say' })
      b() {}
    }
    expect((await bootFailure(SameValueHandler)).message).toContain('the routes of "a" and "b" can never be told apart');

    @RiversideHandler()
    class ShadowedHandler {
      @OnMessage('type')
      any() {}
      @OnMessage({ type: 'say' })
      say() {}
    }
    expect((await bootFailure(ShadowedHandler)).message).toContain('the routes of "any" and "say" can never be told apart');
  });

  it('a route of two fields, or with a value that is not a string, number or boolean', async () => {
    @RiversideHandler()
    class TwoFieldsHandler {
      @OnMessage({ type: 'say', room: 'a' })
      say() {}
    }
    expect((await bootFailure(TwoFieldsHandler)).message).toBe(
      '@OnMessage({"type":"say","room":"a"}) on TwoFieldsHandler.say(): a route is a property name (\'join\') or exactly one field and its value ({ type: \'join\' }).',
    );

    @RiversideHandler()
    class ObjectValueHandler {
      @OnMessage({ type: {} as never })
      say() {}
    }
    expect((await bootFailure(ObjectValueHandler)).message).toContain('the field value must be a string, a finite number or a boolean');
  });

  it('a replyRef that is not a field name', async () => {
    @RiversideHandler({ replyRef: '' })
    class BadRefHandler {
      @OnMessage()
      on() {}
    }
    expect((await bootFailure(BadRefHandler)).message).toContain('@RiversideHandler({ replyRef }) of BadRefHandler must be a non-empty field name');
  });
});
