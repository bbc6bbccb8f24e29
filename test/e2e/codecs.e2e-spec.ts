import { Injectable, type Provider } from '@nestjs/common';
import { pack, unpack } from 'msgpackr';
import type { Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type Codec,
  EncodeError,
  Frame,
  INVALID_MESSAGE,
  MessagePackCodec,
  OnMessage,
  OnTerminate,
  RawBinaryCodec,
  RawTextCodec,
  RiversideHandler,
  type RiversideModuleOptions,
  RiversideStats,
  type Session,
  type TerminateReason,
} from 'nestjs-riverside';
import type { TestClient } from 'nestjs-riverside/testing';
import { eventually, type RunningApp, startRiverside } from '../support/riverside-app.js';

// SPEC 5 (codecs and inbound frames) through real sockets.

const ONE_MIB = 1024 * 1024;

const terminations: { handler: string; reason: TerminateReason }[] = [];

async function terminateReasonOf(handler: string): Promise<TerminateReason> {
  const of = () => terminations.filter((t) => t.handler === handler);
  await eventually(() => expect(of()).toHaveLength(1));
  return of()[0].reason;
}

function rawSocket(client: TestClient): Socket {
  return (client.ws as unknown as { _socket: Socket })._socket;
}

// ---- codecs --------------------------------------------------------------------------------

/** What a custom codec class injects: an ordinary provider of the app. */
@Injectable()
class WirePrefix {
  readonly value = 'v1|';
}

/** JSON behind a prefix taken from an injected provider. */
@Injectable()
class PrefixedJsonCodec implements Codec {
  readonly frameType = 'text' as const;
  constructor(private readonly prefix: WirePrefix) {}

  decode(data: Buffer): unknown {
    const text = data.toString();
    if (!text.startsWith(this.prefix.value)) return INVALID_MESSAGE;
    try {
      return JSON.parse(text.slice(this.prefix.value.length));
    } catch {
      return INVALID_MESSAGE;
    }
  }

  encode(message: unknown): string {
    return this.prefix.value + JSON.stringify(message);
  }
}

/** The same codec, but not listed in any module's providers: Riverside instantiates it. */
@Injectable()
class UnlistedPrefixedJsonCodec extends PrefixedJsonCodec {
  constructor(prefix: WirePrefix) {
    super(prefix);
  }
}

/** A codec with a bug: decode throws instead of returning INVALID_MESSAGE. */
class ThrowingCodec implements Codec {
  readonly frameType = 'text' as const;
  decode(): unknown {
    throw new Error('codec bug');
  }
  encode(message: unknown): string {
    return String(message);
  }
}

// ---- handlers ------------------------------------------------------------------------------

type JsonCommand =
  | { op: 'return-bigint' }
  | { op: 'send-bigint' }
  | { op: 'return-frame'; type: 'text' | 'binary' }
  | { op: 'send-frame'; type: 'text' | 'binary' };

/** The default codec (JSON), unless the module's codec option says otherwise. */
@RiversideHandler({ path: '/json' })
class JsonHandler {
  @OnMessage()
  onMessage(message: JsonCommand | unknown, session: Session) {
    const command = message as Partial<JsonCommand> | null;
    switch (command?.op) {
      case 'return-bigint':
        return 10n;
      case 'send-bigint':
        try {
          session.send(10n);
          return { sent: true };
        } catch (error) {
          return { threw: (error as Error).name, code: (error as EncodeError).code };
        }
      case 'return-frame':
        return command.type === 'text' ? Frame.text('raw, not JSON') : Frame.binary(Buffer.from([1, 2, 3]));
      case 'send-frame':
        session.send(command.type === 'text' ? Frame.text('raw, not JSON') : Frame.binary(Buffer.from([1, 2, 3])));
        return undefined;
      default:
        return { received: message, type: message === null ? 'null' : typeof message };
    }
  }

  @OnTerminate()
  onTerminate(reason: TerminateReason) {
    terminations.push({ handler: 'JsonHandler', reason });
  }
}

/** Declares no codec: it gets the module's. */
@RiversideHandler({ path: '/plain' })
class PlainHandler {
  @OnMessage()
  onMessage(message: unknown) {
    return `${typeof message}: ${String(message)}`;
  }
}

@RiversideHandler({ path: '/raw-text', codec: RawTextCodec })
class RawTextHandler {
  @OnMessage()
  onMessage(message: unknown) {
    return `${typeof message}: ${String(message)}`;
  }
}

@RiversideHandler({ path: '/raw-binary', codec: RawBinaryCodec })
class RawBinaryHandler {
  @OnMessage()
  onMessage(message: Buffer) {
    return Buffer.isBuffer(message) ? Buffer.from(message).reverse() : Buffer.from('not a Buffer');
  }
}

@RiversideHandler({ path: '/msgpack', codec: MessagePackCodec })
class MessagePackHandler {
  @OnMessage()
  onMessage(message: unknown) {
    return message === 'raw please' ? Frame.text('raw, not MessagePack') : { echo: message };
  }
}

@RiversideHandler({ path: '/prefixed', codec: PrefixedJsonCodec })
class PrefixedHandler {
  @OnMessage()
  onMessage(message: unknown) {
    return { echo: message };
  }
}

@RiversideHandler({ path: '/unlisted-prefixed', codec: UnlistedPrefixedJsonCodec })
class UnlistedPrefixedHandler {
  @OnMessage()
  onMessage(message: unknown) {
    return { echo: message };
  }
}

@RiversideHandler({ path: '/throwing-codec', codec: new ThrowingCodec() })
class ThrowingCodecHandler {
  @OnMessage()
  onMessage() {
    return 'never reached';
  }

  @OnTerminate()
  onTerminate(reason: TerminateReason) {
    terminations.push({ handler: 'ThrowingCodecHandler', reason });
  }
}

/** Answers with the size of each binary message it receives. */
@RiversideHandler({ path: '/size', codec: RawBinaryCodec })
class SizeHandler {
  @OnMessage()
  onMessage(message: Buffer) {
    return Frame.text(String(message.length));
  }

  @OnTerminate()
  onTerminate(reason: TerminateReason) {
    terminations.push({ handler: 'SizeHandler', reason });
  }
}

const ALL_HANDLERS = [
  JsonHandler,
  RawTextHandler,
  RawBinaryHandler,
  MessagePackHandler,
  PrefixedHandler,
  ThrowingCodecHandler,
  SizeHandler,
];

// ---- the tests -----------------------------------------------------------------------------

describe('codecs and inbound frames (SPEC 5)', () => {
  let running: RunningApp | undefined;

  const start = async (options: RiversideModuleOptions = {}, handlers: Provider[] = ALL_HANDLERS) => {
    running = await startRiverside(options, [WirePrefix, PrefixedJsonCodec, ...handlers]);
    return running;
  };
  const stats = () => running!.app.get(RiversideStats);

  beforeEach(() => {
    terminations.length = 0;
  });

  afterEach(async () => {
    await running?.close();
    running = undefined;
  });

  describe('JsonCodec, the default (SPEC 5.1)', () => {
    it('decodes a text frame as JSON and encodes the returned value as a JSON text frame', async () => {
      const client = await (await start()).connect('/json');
      client.sendRaw('{"content":"Hello","n":[1,2]}');

      const frame = await client.expectFrame();
      expect(frame.isBinary).toBe(false);
      expect(JSON.parse(frame.data.toString())).toEqual({ received: { content: 'Hello', n: [1, 2] }, type: 'object' });
    });

    it.each([
      ['null', null, 'null'],
      ['123', 123, 'number'],
      ['"s"', 's', 'string'],
      ['true', true, 'boolean'],
      ['[1,"two"]', [1, 'two'], 'object'],
    ])('passes the non-object JSON value %s through to @OnMessage as it is', async (text, value, type) => {
      const client = await (await start()).connect('/json');
      client.sendRaw(text);

      expect(await client.expectMessage()).toEqual({ received: value, type });
    });
  });

  describe('built-in codecs (SPEC 5.1)', () => {
    it('RawTextCodec hands @OnMessage the text as a string and sends returned strings as text frames, untouched', async () => {
      const client = await (await start()).connect('/raw-text');
      client.sendRaw('{not: "json"} ünïcode');

      const frame = await client.expectFrame();
      expect(frame.isBinary).toBe(false);
      expect(frame.data.toString()).toBe('string: {not: "json"} ünïcode');
    });

    it('RawBinaryCodec hands @OnMessage the bytes as a Buffer and sends returned Buffers as binary frames, untouched', async () => {
      const client = await (await start()).connect('/raw-binary');
      client.sendRaw(Buffer.from([0, 1, 2, 255]));

      const frame = await client.expectFrame();
      expect(frame.isBinary).toBe(true);
      expect([...frame.data]).toEqual([255, 2, 1, 0]);
    });

    it('MessagePackCodec decodes binary MessagePack frames and answers in binary MessagePack', async () => {
      const client = await (await start()).connect('/msgpack');
      client.sendRaw(pack({ text: 'hi', n: 1.5, list: [1, null, true], bytes: Buffer.from([9]) }));

      const frame = await client.expectFrame();
      expect(frame.isBinary).toBe(true);
      expect(unpack(frame.data)).toEqual({ echo: { text: 'hi', n: 1.5, list: [1, null, true], bytes: Buffer.from([9]) } });
    });
  });

  describe('choosing the codec (SPEC 5.1)', () => {
    it('a handler\'s @RiversideHandler({ codec }) overrides the module default for that handler only', async () => {
      const app = await start();
      const raw = await app.connect('/raw-text');
      const json = await app.connect('/json');
      raw.sendRaw('42');
      json.sendRaw('42');

      expect((await raw.expectFrame()).data.toString()).toBe('string: 42');
      expect(await json.expectMessage()).toEqual({ received: 42, type: 'number' });
    });

    it.each([
      ['a class', RawTextCodec],
      ['an instance', new RawTextCodec()],
    ])('the module-wide codec option (%s) applies to every handler without its own codec', async (_case, codec) => {
      const client = await (await start({ codec }, [PlainHandler])).connect('/plain');
      client.sendRaw('{"a":1}');

      // With JSON it would have received an object and failed to send its string reply raw.
      const frame = await client.expectFrame();
      expect(frame.data.toString()).toBe('string: {"a":1}');
    });

    it('a custom codec class registered as a provider gets its dependencies injected', async () => {
      const client = await (await start()).connect('/prefixed');
      client.sendRaw('v1|{"a":1}');

      expect((await client.expectFrame()).data.toString()).toBe('v1|{"echo":{"a":1}}');
    });

    it('a custom codec class that no module lists is instantiated with its dependencies injected', async () => {
      const client = await (await start({}, [UnlistedPrefixedHandler])).connect('/unlisted-prefixed');
      client.sendRaw('v1|"hi"');

      expect((await client.expectFrame()).data.toString()).toBe('v1|{"echo":"hi"}');
    });
  });

  describe('frames the codec does not accept (SPEC 5.2)', () => {
    it('ignores a binary frame sent to a text codec, counts it, and keeps the connection usable', async () => {
      const client = await (await start()).connect('/json');
      client.sendRaw(Buffer.from('{"a":1}'));
      client.sendRaw('"after"');

      expect(await client.expectMessage()).toEqual({ received: 'after', type: 'string' });
      expect(stats().invalidFrames).toBe(1);
    });

    it('ignores a text frame sent to a binary codec and counts it', async () => {
      const client = await (await start()).connect('/raw-binary');
      client.sendRaw('text');
      client.sendRaw(Buffer.from([1, 2]));

      expect([...(await client.expectFrame()).data]).toEqual([2, 1]);
      expect(stats().invalidFrames).toBe(1);
    });

    it('ignores invalid JSON without logging it, counts it, and keeps the connection usable', async () => {
      const client = await (await start()).connect('/json');
      client.sendRaw('{"unterminated": ');
      client.sendRaw('{"a":1} trailing');
      client.sendRaw('"after"');

      expect(await client.expectMessage()).toEqual({ received: 'after', type: 'string' });
      expect(stats().invalidFrames).toBe(2);
      expect(running!.logger.entries.filter((e) => e.level === 'error' || e.level === 'warn')).toEqual([]);
    });

    it('ignores MessagePack bytes that do not decode (truncated, or with trailing bytes) and counts them', async () => {
      const client = await (await start()).connect('/msgpack');
      client.sendRaw(Buffer.from([0x81, 0xa1, 0x61]));
      client.sendRaw(Buffer.concat([pack('one'), pack('two')]));
      client.sendRaw(pack('after'));

      expect(unpack((await client.expectFrame()).data)).toEqual({ echo: 'after' });
      expect(stats().invalidFrames).toBe(2);
    });

    it.each([
      ['invalid JSON', '{"unterminated": '],
      ['a binary frame', Buffer.from('{"a":1}')],
    ])(
      "with invalidMessage: 'close', %s closes the connection with 3000 'invalid message' and terminate gets 'invalidMessage'",
      async (_case, data) => {
        const client = await (await start({ invalidMessage: 'close' })).connect('/json');
        client.sendRaw(data);

        expect(await client.expectClose(3000)).toEqual({ code: 3000, reason: 'invalid message' });
        expect(await terminateReasonOf('JsonHandler')).toBe('invalidMessage');
        expect(running!.logger.errors()).toEqual([]);
      },
    );

    it('a custom codec whose decode throws is a bug: the client sees 1011 and the error is logged once', async () => {
      const app = await start();
      const other = await app.connect('/json');
      const client = await app.connect('/throwing-codec');
      client.sendRaw('anything');

      expect(await client.expectClose(1011)).toEqual({ code: 1011, reason: 'internal error' });
      expect(await terminateReasonOf('ThrowingCodecHandler')).toEqual({ kind: 'error', error: expect.any(Error) });
      expect(app.logger.errors()).toEqual([expect.stringContaining('ThrowingCodec.decode() threw: codec bug')]);
      other.sendRaw('"still here"');
      expect(await other.expectMessage()).toEqual({ received: 'still here', type: 'string' });
    });
  });

  describe('values the codec cannot encode', () => {
    it('a returned value the codec cannot encode (a BigInt for JSON) closes with 1011 and is logged once with class and method', async () => {
      const app = await start();
      const client = await app.connect('/json');
      client.send({ op: 'return-bigint' });

      expect(await client.expectClose(1011)).toEqual({ code: 1011, reason: 'internal error' });
      expect(await terminateReasonOf('JsonHandler')).toEqual({ kind: 'error', error: expect.any(EncodeError) });
      expect(app.logger.errors()).toEqual([expect.stringContaining('JsonHandler.onMessage() threw: JsonCodec could not encode')]);
    });

    it('session.send() of a value the codec cannot encode throws an EncodeError (RIVERSIDE_ERR_ENCODE) and writes nothing', async () => {
      const client = await (await start()).connect('/json');
      client.send({ op: 'send-bigint' });

      expect(await client.expectMessage()).toEqual({ threw: 'EncodeError', code: 'RIVERSIDE_ERR_ENCODE' });
    });
  });

  describe('raw frames (SPEC 5.4)', () => {
    it.each([
      ['returned from @OnMessage', 'return-frame'],
      ['passed to session.send()', 'send-frame'],
    ])('Frame.text() %s is written as a text frame, bypassing the codec', async (_case, op) => {
      const client = await (await start()).connect('/json');
      client.send({ op, type: 'text' });

      const frame = await client.expectFrame();
      expect(frame.isBinary).toBe(false);
      expect(frame.data.toString()).toBe('raw, not JSON');
    });

    it.each([
      ['returned from @OnMessage', 'return-frame'],
      ['passed to session.send()', 'send-frame'],
    ])('Frame.binary() %s is written as a binary frame, even by a text codec', async (_case, op) => {
      const client = await (await start()).connect('/json');
      client.send({ op, type: 'binary' });

      const frame = await client.expectFrame();
      expect(frame.isBinary).toBe(true);
      expect([...frame.data]).toEqual([1, 2, 3]);
    });

    it('Frame.text() returned by a binary-codec handler is written as a text frame', async () => {
      const client = await (await start()).connect('/msgpack');
      client.sendRaw(pack('raw please'));

      const frame = await client.expectFrame();
      expect(frame.isBinary).toBe(false);
      expect(frame.data.toString()).toBe('raw, not MessagePack');
    });
  });

  describe('protocol errors and sizes (SPEC 5.3)', () => {
    it('accepts a message of exactly 1 MiB by default', async () => {
      const client = await (await start()).connect('/size');
      client.sendRaw(Buffer.alloc(ONE_MIB));

      expect((await client.expectFrame()).data.toString()).toBe(String(ONE_MIB));
    });

    it('closes with 1009 a message over the default maxPayload of 1 MiB; terminate gets { kind: "error" }', async () => {
      const client = await (await start()).connect('/size');
      client.sendRaw(Buffer.alloc(ONE_MIB + 1));

      expect((await client.expectClose()).code).toBe(1009);
      expect(await terminateReasonOf('SizeHandler')).toEqual({ kind: 'error', error: expect.any(Error) });
    });

    it('the ws.maxPayload option sets the limit: at the limit passes, one byte over closes with 1009', async () => {
      const app = await start({ ws: { maxPayload: 100 } });
      const atLimit = await app.connect('/size');
      const over = await app.connect('/size');
      atLimit.sendRaw(Buffer.alloc(100));
      over.sendRaw(Buffer.alloc(101));

      expect((await atLimit.expectFrame()).data.toString()).toBe('100');
      expect((await over.expectClose()).code).toBe(1009);
    });

    it('closes with 1007 a text frame that is not valid UTF-8; terminate gets { kind: "error" }', async () => {
      const client = await (await start()).connect('/json');
      client.sendRaw(Buffer.from([0x22, 0xc3, 0x28, 0x22]), false);

      expect((await client.expectClose()).code).toBe(1007);
      expect(await terminateReasonOf('JsonHandler')).toEqual({ kind: 'error', error: expect.any(Error) });
    });

    it('closes with 1002 a frame that breaks the protocol (an unmasked client frame)', async () => {
      const client = await (await start()).connect('/json');
      rawSocket(client).write(Buffer.from([0x81, 0x02, 0x68, 0x69]));

      expect((await client.expectClose()).code).toBe(1002);
      expect(await terminateReasonOf('JsonHandler')).toEqual({ kind: 'error', error: expect.any(Error) });
    });

    it('reassembles a fragmented message and hands it to @OnMessage once', async () => {
      const client = await (await start()).connect('/json');
      client.ws.send('{"parts":', { fin: false });
      client.ws.send('[1,', { fin: false });
      client.ws.send('2]}', { fin: true });

      expect(await client.expectMessage()).toEqual({ received: { parts: [1, 2] }, type: 'object' });
      expect(stats().framesIn).toBe(1);
    });
  });
});
