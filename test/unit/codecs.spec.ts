import { Packr, pack, unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { Frame, INVALID_MESSAGE, JsonCodec, MessagePackCodec, RawBinaryCodec, RawTextCodec } from 'nestjs-riverside';
import { isCodec } from '../../src/codec/codec.interface.js';

// SPEC 5.1: the built-in codecs as classes. What reaches the wire is in test/e2e/codecs.e2e-spec.ts.

const utf8 = (text: string) => Buffer.from(text, 'utf8');

describe(JsonCodec, () => {
  const codec = new JsonCodec();

  it('reads and writes text frames', () => {
    expect(codec.frameType).toBe('text');
  });

  describe('decode', () => {
    it.each([
      ['an object', '{"a":{"b":[1,2]}}', { a: { b: [1, 2] } }],
      ['an array', '[1,"two",null]', [1, 'two', null]],
      ['a string', '"s"', 's'],
      ['a number', '123', 123],
      ['true', 'true', true],
      ['null', 'null', null],
      ['text with surrounding whitespace', ' \n{"a":1}\t', { a: 1 }],
      ['non-ASCII text', '{"name":"Zoë 🌊"}', { name: 'Zoë 🌊' }],
    ])('reads %s', (_case, text, value) => {
      expect(codec.decode(utf8(text))).toEqual(value);
    });

    it.each([
      ['truncated JSON', '{"a":'],
      ['trailing garbage', '{"a":1} x'],
      ['two values', '1 2'],
      ['an empty frame', ''],
      ['single quotes', "{'a':1}"],
      ['a bare word', 'hello'],
    ])('returns INVALID_MESSAGE for %s instead of throwing', (_case, text) => {
      expect(codec.decode(utf8(text))).toBe(INVALID_MESSAGE);
    });
  });

  describe('encode', () => {
    it.each([
      ['an object', { a: [1, 'x', null] }, '{"a":[1,"x",null]}'],
      ['a string', 's', '"s"'],
      ['a number', 1.5, '1.5'],
      ['null', null, 'null'],
      ['false', false, 'false'],
    ])('writes %s as JSON text', (_case, value, text) => {
      expect(codec.encode(value)).toBe(text);
    });

    it('uses toJSON, as JSON.stringify does (a Date becomes its ISO string)', () => {
      expect(codec.encode({ at: new Date(0) })).toBe('{"at":"1970-01-01T00:00:00.000Z"}');
    });

    it.each([
      ['undefined', undefined],
      ['a function', () => 1],
      ['a symbol', Symbol('s')],
    ])('throws a TypeError for %s, which has no JSON form (rather than sending "undefined")', (_case, value) => {
      expect(() => codec.encode(value)).toThrow(TypeError);
    });

    it('throws for a BigInt', () => {
      expect(() => codec.encode(10n)).toThrow(TypeError);
    });

    it('throws for a circular object', () => {
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      expect(() => codec.encode(circular)).toThrow(TypeError);
    });
  });
});

describe(RawTextCodec, () => {
  const codec = new RawTextCodec();

  it('reads and writes text frames', () => {
    expect(codec.frameType).toBe('text');
  });

  describe('decode', () => {
    it('returns the UTF-8 text as a string, untouched (JSON-looking or not)', () => {
      expect(codec.decode(utf8('{"a":1} ünïcode 🌊'))).toBe('{"a":1} ünïcode 🌊');
    });

    it('returns the empty string for an empty frame', () => {
      expect(codec.decode(Buffer.alloc(0))).toBe('');
    });
  });

  describe('encode', () => {
    it('returns the string as it is', () => {
      expect(codec.encode('"not re-quoted"')).toBe('"not re-quoted"');
    });

    it.each([
      ['a number', 1],
      ['an object', { a: 1 }],
      ['a Buffer', Buffer.from('x')],
    ])('throws a TypeError for %s', (_case, value) => {
      expect(() => codec.encode(value as unknown as string)).toThrow(new TypeError(`RawTextCodec sends strings, got ${typeof value}`));
    });
  });
});

describe(RawBinaryCodec, () => {
  const codec = new RawBinaryCodec();

  it('reads and writes binary frames', () => {
    expect(codec.frameType).toBe('binary');
  });

  describe('decode', () => {
    it('returns the very Buffer it was given', () => {
      const data = Buffer.from([0, 1, 255]);
      expect(codec.decode(data)).toBe(data);
    });
  });

  describe('encode', () => {
    it.each([
      ['a Buffer', Buffer.from([1, 2])],
      ['a Uint8Array', new Uint8Array([1, 2])],
    ])('returns %s as it is', (_case, data) => {
      expect(codec.encode(data)).toBe(data);
    });

    it.each([
      ['a string', 'bytes'],
      ['an array of numbers', [1, 2]],
      ['an ArrayBuffer', new ArrayBuffer(2)],
    ])('throws a TypeError for %s', (_case, value) => {
      expect(() => codec.encode(value as unknown as Uint8Array)).toThrow(TypeError);
    });
  });
});

describe(MessagePackCodec, () => {
  const codec = new MessagePackCodec();

  it('reads and writes binary frames', () => {
    expect(codec.frameType).toBe('binary');
  });

  describe('decode', () => {
    it('reads what another MessagePack library wrote', () => {
      const value = { text: 'hi', n: -1.5, big: 2 ** 40, list: [1, null, true], bytes: Buffer.from([9]) };
      expect(codec.decode(pack(value))).toEqual(value);
    });

    it.each([
      ['a truncated map', [0x81, 0xa1, 0x61]],
      ['a truncated string', [0xa5, 0x61]],
      ['trailing bytes after a value', [0x01, 0x02]],
      ['an empty frame', []],
      ['the never-used byte 0xC1', [0xc1]],
    ])('returns INVALID_MESSAGE for %s instead of throwing', (_case, bytes) => {
      expect(codec.decode(Buffer.from(bytes))).toBe(INVALID_MESSAGE);
    });
  });

  describe('encode', () => {
    it('writes a small object as a plain MessagePack fixmap, not as a msgpackr record extension', () => {
      expect([...codec.encode({ a: 1 })]).toEqual([0x81, 0xa1, 0x61, 0x01]);
    });

    it('writes output that another MessagePack decoder reads back', () => {
      const value = { nested: { list: ['x', 2, false] }, bytes: Buffer.from([1, 2]) };
      expect(unpack(codec.encode(value))).toEqual(value);
      // A decoder with no shared structures (as in another process) reads it too.
      expect(new Packr({ useRecords: false }).unpack(codec.encode(value))).toEqual(value);
    });

    it('round-trips through its own decode', () => {
      const value = [{ id: 1 }, { id: 2, tags: ['a'] }];
      expect(codec.decode(codec.encode(value))).toEqual(value);
    });
  });
});

describe(Frame, () => {
  describe('text', () => {
    it('makes a text frame of the string', () => {
      expect(Frame.text('raw')).toMatchObject({ type: 'text', data: 'raw' });
    });

    it('throws a TypeError for anything but a string', () => {
      expect(() => Frame.text(Buffer.from('x') as unknown as string)).toThrow(new TypeError('Frame.text() takes a string'));
    });
  });

  describe('binary', () => {
    it.each([
      ['a Buffer', Buffer.from([1])],
      ['a Uint8Array', new Uint8Array([1])],
    ])('makes a binary frame of %s', (_case, data) => {
      expect(Frame.binary(data)).toMatchObject({ type: 'binary', data });
    });

    it('throws a TypeError for anything but bytes', () => {
      expect(() => Frame.binary('x' as unknown as Uint8Array)).toThrow(
        new TypeError('Frame.binary() takes a Buffer or Uint8Array'),
      );
    });
  });
});

describe('isCodec', () => {
  it.each<[string, unknown]>([
    ['JsonCodec', new JsonCodec()],
    ['RawTextCodec', new RawTextCodec()],
    ['RawBinaryCodec', new RawBinaryCodec()],
    ['MessagePackCodec', new MessagePackCodec()],
    ['a plain object', { frameType: 'binary', encode: () => Buffer.alloc(0), decode: () => null }],
  ])('accepts %s', (_case, candidate) => {
    expect(isCodec(candidate)).toBe(true);
  });

  it.each<[string, unknown]>([
    ['null', null],
    ['a class (not an instance)', JsonCodec],
    ['an unknown frameType', { frameType: 'json', encode: () => '', decode: () => null }],
    ['a missing encode', { frameType: 'text', decode: () => null }],
    ['a missing decode', { frameType: 'text', encode: () => '' }],
  ])('rejects %s', (_case, candidate) => {
    expect(isCodec(candidate)).toBe(false);
  });
});
