import { endianness } from 'node:os';
import { serialize } from 'node:v8';

/**
 * The tags of V8's structured-clone format (v8/src/objects/value-serializer.cc) that
 * plain-clone-writer.ts and plain-clone-reader.ts know: plain objects and dense arrays of
 * strings, numbers, booleans, null and undefined.
 */

/** V8 writes doubles and two-byte strings in the host's byte order; the plain-clone code is little-endian only. */
export const LITTLE_ENDIAN = endianness() === 'LE';
/** The version byte of this runtime's V8 serializer (15 on Node 20). */
export const CLONE_VERSION = serialize(null)[1];
export const TAG_VERSION = 0xff;
export const TAG_PADDING = 0x00;
export const TAG_UNDEFINED = 0x5f; // '_'
export const TAG_NULL = 0x30; // '0'
export const TAG_TRUE = 0x54; // 'T'
export const TAG_FALSE = 0x46; // 'F'
/** ZigZag varint. */
export const TAG_INT32 = 0x49; // 'I'
/** 8 bytes, the host's byte order. */
export const TAG_DOUBLE = 0x4e; // 'N'
/** Varint length, then Latin-1. */
export const TAG_ONE_BYTE_STRING = 0x22; // '"'
/** Varint byte length, then UTF-16 in the host's byte order. */
export const TAG_TWO_BYTE_STRING = 0x63; // 'c'
/** Key, value, ..., then TAG_END_OBJECT and the varint count of properties. */
export const TAG_BEGIN_OBJECT = 0x6f; // 'o'
export const TAG_END_OBJECT = 0x7b; // '{'
/** Varint length, the elements, the other properties, then TAG_END_DENSE_ARRAY, varint property count and length. */
export const TAG_BEGIN_DENSE_ARRAY = 0x41; // 'A'
export const TAG_END_DENSE_ARRAY = 0x24; // '$'
