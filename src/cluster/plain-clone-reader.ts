import { deserialize } from 'node:v8';
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
 * `v8.deserialize(bytes)`, read in JavaScript when the bytes hold only plain data (plain objects
 * and dense arrays of strings, numbers, booleans, null and undefined, as plain-clone-writer.ts
 * and V8 write them); anything else (another tag, a back-reference, other properties on an array,
 * a `__proto__` key, nesting deeper than MAX_DEPTH, bytes that end early) is handed to
 * `v8.deserialize()` as it is, which reads it or throws as it always did.
 *
 * Why: each `v8.deserialize()` makes a native deserializer that Node releases through a weak
 * handle, finalised inside the next young-generation GC's pause (see plain-clone-writer.ts).
 */
export function readPlainClone(bytes: Buffer): unknown {
  if (LITTLE_ENDIAN && bytes.length >= 2 && bytes[0] === TAG_VERSION && bytes[1] === CLONE_VERSION) {
    source = bytes;
    offset = 2;
    try {
      return readValue(0);
    } catch (error) {
      if (error !== NOT_PLAIN) throw error;
    } finally {
      source = EMPTY;
    }
  }
  return deserialize(bytes);
}

const MAX_DEPTH = 64;
const EMPTY = Buffer.alloc(0);
/** Thrown inside the reader when the bytes are not plain data; never escapes it. */
const NOT_PLAIN: unique symbol = Symbol('not plain data');

let source: Buffer = EMPTY;
let offset = 0;

function readValue(depth: number): unknown {
  const tag = readTag();
  switch (tag) {
    case TAG_UNDEFINED:
      return undefined;
    case TAG_NULL:
      return null;
    case TAG_TRUE:
      return true;
    case TAG_FALSE:
      return false;
    case TAG_INT32:
      return readInt32();
    case TAG_DOUBLE:
      return readDouble();
    case TAG_ONE_BYTE_STRING:
    case TAG_TWO_BYTE_STRING:
      return readString(tag);
    case TAG_BEGIN_OBJECT:
      if (depth >= MAX_DEPTH) throw NOT_PLAIN;
      return readObject(depth + 1);
    case TAG_BEGIN_DENSE_ARRAY:
      if (depth >= MAX_DEPTH) throw NOT_PLAIN;
      return readArray(depth + 1);
    default:
      throw NOT_PLAIN;
  }
}

/** The next tag, padding skipped. */
function readTag(): number {
  let tag: number;
  do {
    if (offset >= source.length) throw NOT_PLAIN;
    tag = source[offset++];
  } while (tag === TAG_PADDING);
  return tag;
}

function readObject(depth: number): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  let count = 0;
  for (;;) {
    const tag = readTag();
    if (tag === TAG_END_OBJECT) break;
    let key: string;
    if (tag === TAG_ONE_BYTE_STRING || tag === TAG_TWO_BYTE_STRING) key = readString(tag);
    else if (tag === TAG_INT32) key = String(readInt32());
    else if (tag === TAG_DOUBLE) key = String(readDouble());
    else throw NOT_PLAIN;
    // Assigned, it would set the prototype; V8 defines it as a property.
    if (key === '__proto__') throw NOT_PLAIN;
    object[key] = readValue(depth);
    count++;
  }
  if (readVarint() !== count) throw NOT_PLAIN;
  return object;
}

function readArray(depth: number): unknown[] {
  const length = readVarint();
  if (length > source.length - offset) throw NOT_PLAIN; // at least a byte per element
  const array: unknown[] = [];
  for (let index = 0; index < length; index++) array.push(readValue(depth));
  if (readTag() !== TAG_END_DENSE_ARRAY || readVarint() !== 0 || readVarint() !== length) throw NOT_PLAIN;
  return array;
}

function readString(tag: number): string {
  const byteLength = readVarint();
  const end = offset + byteLength;
  if (end > source.length) throw NOT_PLAIN;
  let value: string;
  if (tag === TAG_ONE_BYTE_STRING) value = source.toString('latin1', offset, end);
  else if (byteLength % 2 === 0) value = source.toString('utf16le', offset, end);
  else throw NOT_PLAIN;
  offset = end;
  return value;
}

function readInt32(): number {
  const zigzag = readVarint();
  return (zigzag >>> 1) ^ -(zigzag & 1);
}

function readDouble(): number {
  if (offset + 8 > source.length) throw NOT_PLAIN;
  const value = source.readDoubleLE(offset);
  offset += 8;
  return value;
}

/** A uint32 varint; longer ones are left to V8. */
function readVarint(): number {
  let value = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (offset >= source.length) throw NOT_PLAIN;
    const byte = source[offset++];
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) {
      if (value > 0xffffffff) throw NOT_PLAIN;
      return value;
    }
  }
  throw NOT_PLAIN;
}
