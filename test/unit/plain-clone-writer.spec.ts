import { describe, expect, it } from 'vitest';
import { DefaultSerializer, deserialize, serialize } from 'node:v8';
import { writePlainClone } from '../../src/cluster/plain-clone-writer.js';

const NO_HEAD = Buffer.alloc(0);

/** What Node's own serializer writes for `value` behind `head`. */
function v8Bytes(head: Buffer, value: unknown): Buffer {
  const serializer = new DefaultSerializer();
  serializer.writeRawBytes(head);
  serializer.writeHeader();
  serializer.writeValue(value);
  return serializer.releaseBuffer();
}

describe('plain data in V8 structured-clone format, written without a native serializer', () => {
  const plain: [string, unknown][] = [
    ['null', null],
    ['undefined', undefined],
    ['booleans', [true, false]],
    ['int32 edges', [0, 1, -1, 63, 64, -64, -65, 2 ** 30, -(2 ** 31), 2 ** 31 - 1]],
    ['doubles', [1.5, -0.25, 2 ** 31, -(2 ** 31) - 1, Number.MAX_VALUE, Number.EPSILON, NaN, Infinity, -Infinity]],
    ['ASCII, Latin-1 and two-byte strings', ['', 'hello', 'héllo', 'ÿ', 'ü€', '✓ done', '😀']],
    ['a long string (multi-byte length varint)', 'x'.repeat(300)],
    ['nested objects and arrays', { user: 'u-1', t: 1733356800000, body: { text: 'hi', tags: ['a', 'b'], meta: { n: null, u: undefined } }, list: [[1], [], {}] }],
    ['an object without prototype', Object.assign(Object.create(null), { a: 1 })],
    ['a two-byte key', { 'clé✓': 1 }],
  ];

  for (const [name, value] of plain) {
    it(`writes ${name} byte for byte as V8 does`, () => {
      expect(writePlainClone(NO_HEAD, value)).toEqual(serialize(value));
    });
  }

  it('pads two-byte strings as V8 does, counted from the start of the head', () => {
    for (let headLength = 0; headLength < 6; headLength++) {
      const head = Buffer.alloc(headLength, 7);
      for (const value of ['€', { k: 'ü€' }, ['a', '✓✓', 'é', '😀']]) {
        expect(writePlainClone(head, value)).toEqual(v8Bytes(head, value));
      }
    }
  });

  it('reads back as the same value what V8 would write differently: -0, integers among doubles, shared objects', () => {
    const shared = { id: 1 };
    const value = { zero: -0, a: shared, b: shared, mixed: [1, -2, 2.5] };
    const bytes = writePlainClone(NO_HEAD, value) as Buffer;
    const back = deserialize(bytes);
    expect(back).toEqual(value);
    expect(Object.is(back.zero, -0)).toBe(true);
  });

  it('grows past its first scratch buffer', () => {
    const value = { rows: Array.from({ length: 2000 }, (_, i) => ({ i, name: `row ${i}` })) };
    // equals(): toEqual() on 40 kB buffers is slow.
    expect((writePlainClone(NO_HEAD, value) as Buffer).equals(serialize(value))).toBe(true);
  });

  class Point {
    x = 1;
  }
  const sparse = [1, , 3];
  const extra = Object.assign([1, 2], { label: 'x' });
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  let deep: unknown = 1;
  for (let i = 0; i < 100; i++) deep = [deep];
  const notPlain: [string, unknown][] = [
    ['a BigInt', 10n],
    ['a Date', new Date(0)],
    ['a Map', new Map([[1, 2]])],
    ['a Set', new Set([1])],
    ['a Buffer', Buffer.from('ab')],
    ['a class instance', new Point()],
    ['an object with index keys', { 1: 'a', b: 2 }],
    ['a sparse array', sparse],
    ['an array with other properties', extra],
    ['a cycle', cyclic],
    ['deep nesting', deep],
    ['more than 64 KiB', 'x'.repeat(70_000)],
    ['a function inside', { f: () => 1 }],
    ['a Proxy', { inner: new Proxy({ a: 1 }, {}) }],
  ];

  for (const [name, value] of notPlain) {
    it(`leaves ${name} to V8's serializer`, () => {
      expect(writePlainClone(NO_HEAD, value)).toBeNull();
    });
  }

  it('is still usable after a value it left to V8', () => {
    expect(writePlainClone(NO_HEAD, { a: [1, new Date(0)] })).toBeNull();
    expect(writePlainClone(NO_HEAD, { a: [1, 2] })).toEqual(serialize({ a: [1, 2] }));
  });

  it('passes on what a getter throws, and leaves a value whose getter writes a message itself to V8', () => {
    const failing = {
      get boom(): never {
        throw new Error('getter failed');
      },
    };
    expect(() => writePlainClone(NO_HEAD, failing)).toThrow('getter failed');
    let inner: Buffer | null = Buffer.alloc(0);
    const reentrant = {
      get nested() {
        inner = writePlainClone(NO_HEAD, { x: 1 });
        return 2;
      },
    };
    expect(deserialize(writePlainClone(NO_HEAD, reentrant) as Buffer)).toEqual({ nested: 2 });
    expect(inner).toBeNull();
  });
});
