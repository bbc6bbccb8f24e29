import { describe, expect, it } from 'vitest';
import { deserialize, serialize } from 'node:v8';
import { readPlainClone } from '../../src/cluster/plain-clone-reader.js';
import { writePlainClone } from '../../src/cluster/plain-clone-writer.js';

describe('plain data read from V8 structured-clone bytes without a native deserializer', () => {
  const plain: [string, unknown][] = [
    ['null, undefined, booleans', [null, undefined, true, false]],
    ['int32 edges and doubles', [0, -1, 2 ** 31 - 1, -(2 ** 31), 1.5, -0, NaN, Infinity, 2 ** 53]],
    ['ASCII, Latin-1 and two-byte strings', ['', 'hello', 'héllo', 'ü€', '😀', 'x'.repeat(300)]],
    ['nested objects and arrays', { user: 'u-1', t: 1733356800000.5, body: { text: 'hi', tags: ['a', 'b'], n: null, u: undefined }, list: [[1], [], {}] }],
    ['index keys, as V8 writes them (numbers)', { 1: 'a', 4294967294: 'b', b: 2 }],
    ['a two-byte key', { 'clé✓': 1 }],
  ];

  for (const [name, value] of plain) {
    it(`reads ${name} as v8.deserialize() does`, () => {
      expect(readPlainClone(serialize(value))).toEqual(value);
    });
  }

  it('reads what plain-clone-writer.ts writes, padding included', () => {
    const value = { a: ['€', 'é', 1, { b: '✓' }], c: -7 };
    for (let headLength = 0; headLength < 4; headLength++) {
      const head = Buffer.alloc(headLength);
      const bytes = writePlainClone(head, value) as Buffer;
      expect(readPlainClone(bytes.subarray(headLength))).toEqual(value);
    }
  });

  it('reads a -0 as -0', () => {
    expect(Object.is(readPlainClone(serialize(-0)), -0)).toBe(true);
  });

  it('hands anything else to v8.deserialize(): Date, Map, BigInt, Buffer, shared objects, sparse arrays, array properties', () => {
    const shared = { id: 1 };
    const others: unknown[] = [
      new Date(5),
      new Map([[1, 'a']]),
      { big: 10n },
      { bin: Buffer.from([1, 2]) },
      { a: shared, b: shared },
      [1, , 3],
      Object.assign([1], { label: 'x' }),
    ];
    for (const value of others) expect(readPlainClone(serialize(value))).toEqual(value);
    const back = readPlainClone(serialize({ a: shared, b: shared })) as { a: unknown; b: unknown };
    expect(back.a).toBe(back.b);
    expect(Buffer.isBuffer((readPlainClone(serialize({ bin: Buffer.from([1]) })) as { bin: unknown }).bin)).toBe(true);
  });

  it('keeps a "__proto__" key as a property, as V8 does', () => {
    const value = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}');
    const back = readPlainClone(serialize(value)) as Record<string, unknown>;
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.keys(back)).toEqual(['__proto__', 'a']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('throws as v8.deserialize() does on bytes cut short or that are no structured clone', () => {
    const whole = serialize({ text: 'hello', list: [1, 2, 3] });
    for (let end = 0; end < whole.length; end++) {
      const cut = whole.subarray(0, end);
      expect(outcome(() => readPlainClone(cut))).toEqual(outcome(() => deserialize(cut)));
    }
    expect(outcome(() => readPlainClone(Buffer.from('not a clone')))).toEqual(outcome(() => deserialize(Buffer.from('not a clone'))));
  });
});

function outcome(read: () => unknown): { value: unknown } | { error: string } {
  try {
    return { value: read() };
  } catch (error) {
    return { error: (error as Error).message };
  }
}
