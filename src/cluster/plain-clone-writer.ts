import { types } from 'node:util';
import {
  CLONE_VERSION,
  LITTLE_ENDIAN,
  TAG_BEGIN_DENSE_ARRAY,
  TAG_BEGIN_OBJECT,
  TAG_DOUBLE,
  TAG_END_DENSE_ARRAY,
  TAG_END_OBJECT,
  TAG_FALSE,
  TAG_INT32,
  TAG_NULL,
  TAG_ONE_BYTE_STRING,
  TAG_PADDING,
  TAG_TRUE,
  TAG_TWO_BYTE_STRING,
  TAG_UNDEFINED,
  TAG_VERSION,
} from './structured-clone-tags.js';

/**
 * Writes plain data (plain objects and arrays of strings, numbers, booleans, null and undefined)
 * in V8's structured-clone format, in JavaScript: what `v8.deserialize()` reads back as the same
 * value, byte for byte what Node's serializer writes for it (see the exceptions below).
 *
 * Why not `new v8.DefaultSerializer()`: each one is a native object that Node releases through a
 * weak handle, so every message serialized that way is finalised by the next young-generation GC
 * inside its pause. At thousands of cross-node deliveries a second, that made every scavenge of
 * a worker several ms longer (bench/PROFILE.md, "The Redis tail at 5,000/s"); this writer
 * allocates nothing native.
 *
 * Anything else (a Date, Map, Set, BigInt, typed array, class instance, an object with index-like
 * keys, a sparse array or one with extra properties, nesting deeper than MAX_DEPTH, more than
 * SCRATCH_MAX bytes) is not written here: `writePlainClone` returns null and the caller uses
 * V8's serializer, which also turns references to one object into back-references.
 *
 * Differences from V8's bytes that `v8.deserialize()` reads back as the same value: an object
 * reached twice is written twice (the receiver gets two equal copies, which a codec encodes the
 * same way; V8 keeps one object); a number is written as an int32 whenever it is one, and a
 * string as one byte per character whenever every character fits, whatever V8's own
 * representation of it.
 */

/** Deeper than this (or a cycle): left to V8's serializer. */
const MAX_DEPTH = 64;
/** Larger than this: left to V8's serializer (whose per-message native cost is small next to it). */
const SCRATCH_MAX = 64 * 1024;
/** A key V8 stores as an element and writes as a number. */
const INDEX_KEY = /^(?:0|[1-9]\d*)$/;

/** Thrown inside the writer when a value is not plain data; never escapes it. */
const NOT_PLAIN: unique symbol = Symbol('not plain data');

let scratch = Buffer.allocUnsafeSlow(4096);
let position = 0;
/** A getter of the value being written that writes a message itself gets V8's serializer. */
let busy = false;

/**
 * `head` (copied as it is), then V8's version header, then `value`, in a new buffer; null when
 * `value` is not plain data (see above).
 */
export function writePlainClone(head: Buffer, value: unknown): Buffer | null {
  if (!LITTLE_ENDIAN || busy || head.length > SCRATCH_MAX) return null;
  busy = true;
  try {
    position = 0;
    ensure(head.length + 2);
    scratch.set(head, 0);
    position = head.length;
    scratch[position++] = TAG_VERSION;
    scratch[position++] = CLONE_VERSION;
    writeValue(value, 0);
    // From Node's buffer pool when small: no native object for the message either.
    const out = Buffer.allocUnsafe(position);
    scratch.copy(out, 0, 0, position);
    return out;
  } catch (error) {
    if (error === NOT_PLAIN) return null;
    throw error;
  } finally {
    busy = false;
  }
}

function writeValue(value: unknown, depth: number): void {
  switch (typeof value) {
    case 'string':
      return writeString(value);
    case 'number':
      return writeNumber(value);
    case 'boolean':
      return writeTag(value ? TAG_TRUE : TAG_FALSE);
    case 'undefined':
      return writeTag(TAG_UNDEFINED);
    case 'object':
      if (value === null) return writeTag(TAG_NULL);
      // V8 refuses a Proxy (a DataCloneError): left to it, so that it still does.
      if (depth >= MAX_DEPTH || types.isProxy(value)) throw NOT_PLAIN;
      if (Array.isArray(value)) return writeArray(value, depth + 1);
      return writeObject(value, depth + 1);
    default:
      throw NOT_PLAIN; // bigint, symbol, function
  }
}

function writeObject(object: object, depth: number): void {
  const prototype = Object.getPrototypeOf(object);
  if (prototype !== Object.prototype && prototype !== null) throw NOT_PLAIN;
  writeTag(TAG_BEGIN_OBJECT);
  const keys = Object.keys(object);
  for (const key of keys) {
    if (INDEX_KEY.test(key)) throw NOT_PLAIN; // V8 writes these as numbers, first
    writeString(key);
    writeValue((object as Record<string, unknown>)[key], depth);
  }
  writeTag(TAG_END_OBJECT);
  writeVarint(keys.length);
}

function writeArray(array: unknown[], depth: number): void {
  if (Object.getPrototypeOf(array) !== Array.prototype) throw NOT_PLAIN;
  const length = array.length;
  // Holes or properties besides the elements: V8 writes those differently.
  if (Object.keys(array).length !== length) throw NOT_PLAIN;
  writeTag(TAG_BEGIN_DENSE_ARRAY);
  writeVarint(length);
  for (let index = 0; index < length; index++) {
    if (!(index in array)) throw NOT_PLAIN;
    writeValue(array[index], depth);
  }
  writeTag(TAG_END_DENSE_ARRAY);
  writeVarint(0); // properties besides the elements
  writeVarint(length);
}

function writeNumber(value: number): void {
  if ((value | 0) === value && !Object.is(value, -0)) {
    writeTag(TAG_INT32);
    writeVarint(((value << 1) ^ (value >> 31)) >>> 0); // ZigZag
    return;
  }
  ensure(9);
  scratch[position++] = TAG_DOUBLE;
  position = scratch.writeDoubleLE(value, position);
}

function writeString(value: string): void {
  const length = value.length;
  if (oneByte(value)) {
    ensure(6 + length);
    scratch[position++] = TAG_ONE_BYTE_STRING;
    writeVarint(length);
    position += scratch.write(value, position, length, 'latin1');
    return;
  }
  const byteLength = length * 2;
  ensure(7 + byteLength);
  // V8 aligns two-byte characters on an even offset from the start of its buffer.
  if ((position + 1 + varintLength(byteLength)) & 1) scratch[position++] = TAG_PADDING;
  scratch[position++] = TAG_TWO_BYTE_STRING;
  writeVarint(byteLength);
  position += scratch.write(value, position, byteLength, 'utf16le');
}

/** Every character below 256: V8 writes it as Latin-1. */
function oneByte(value: string): boolean {
  // ASCII (the usual case) is told by one native call.
  if (Buffer.byteLength(value, 'utf8') === value.length) return true;
  for (let index = 0; index < value.length; index++) if (value.charCodeAt(index) > 0xff) return false;
  return true;
}

function writeTag(tag: number): void {
  ensure(1);
  scratch[position++] = tag;
}

function writeVarint(value: number): void {
  ensure(5);
  while (value >= 0x80) {
    scratch[position++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  scratch[position++] = value;
}

function varintLength(value: number): number {
  let bytes = 1;
  while (value >= 0x80) {
    value >>>= 7;
    bytes++;
  }
  return bytes;
}

/** Room for `bytes` more; past SCRATCH_MAX the value is left to V8's serializer. */
function ensure(bytes: number): void {
  const needed = position + bytes;
  if (needed <= scratch.length) return;
  if (needed > SCRATCH_MAX) throw NOT_PLAIN;
  const grown = Buffer.allocUnsafeSlow(Math.min(SCRATCH_MAX, Math.max(needed, scratch.length * 2)));
  scratch.copy(grown, 0, 0, position);
  scratch = grown;
}
