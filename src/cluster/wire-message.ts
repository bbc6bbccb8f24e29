import { DefaultSerializer } from 'node:v8';
import { EncodeError } from '../errors/encode.error.js';
import { readPlainClone } from './plain-clone-reader.js';
import { writePlainClone } from './plain-clone-writer.js';

/**
 * What nodes send each other on the node-to-node topics (`user:<id>`, `channel:<id>`). External
 * publishers have their own namespace (`ext:`, see topics.ts), so nothing here ever has to be
 * told apart from their bytes.
 *
 * Layout of version 2.x, integers big-endian:
 *
 * | offset | bytes | field                                                                 |
 * |--------|-------|-----------------------------------------------------------------------|
 * | 0      | 2     | magic `FF 52`                                                         |
 * | 2      | 1     | major version (2)                                                     |
 * | 3      | 1     | minor version (0)                                                     |
 * | 4      | 1     | kind: 0 deliver, 1 info, 2 close                                      |
 * | 5      | 1     | flags: 1 raw binary frame, 2 raw text frame, 4 for one session        |
 * | 6      | 2     | H, the length of the header fields that follow                        |
 * | 8      | H     | origin (u8 length + latin1), session id when flag 4 (u16 length + UTF-8), then optional fields (u8 tag, u16 length, value) |
 * | 8+H    | 4     | body length B                                                         |
 * | 12+H   | B     | body; the message ends exactly here                                   |
 *
 * Bodies: a deliver is the raw frame's bytes (flags 1/2: a `Frame`) or the message as data in V8's
 * structured-clone serialization, encoded by each receiving node with its sessions' codecs; an
 * info is structured-clone data; a close is a u16 code then the UTF-8 reason.
 *
 * Upgrade rule: a node reads every major version it knows (1 and 2). Within its major version,
 * a newer minor only adds optional fields and flags, which an older node skips. Anything a node
 * must understand gets a new major version, which older nodes reject (counted, logged).
 */
export type WireMessage =
  | (WireAddress & { readonly kind: 'frame'; readonly binary: boolean; readonly data: Buffer })
  | (WireAddress & { readonly kind: 'deliver'; readonly message: unknown })
  | (WireAddress & { readonly kind: 'info'; readonly info: unknown })
  | (WireAddress & { readonly kind: 'close'; readonly code: number; readonly reason: string });

interface WireAddress {
  /** The node that published it. */
  readonly origin: string;
  /** One session of the topic's user (session targets ride on the user topic); null for all. */
  readonly session: string | null;
}

/** Why a payload on a node-to-node topic was not read. */
export interface WireRejection {
  readonly kind: 'rejected';
  readonly reason: string;
}

export const WIRE_MAJOR = 2;
export const WIRE_MINOR = 0;

const MAGIC_0 = 0xff;
const MAGIC_1 = 0x52;
/** Version 1 (nestjs-riverside 0.1): `FF 01 kind flags originLength origin body`. */
const V1_MARK = 0x01;
const KIND_DELIVER = 0;
const KIND_INFO = 1;
const KIND_CLOSE = 2;
const FLAG_RAW_BINARY = 1;
const FLAG_RAW_TEXT = 2;
const FLAG_SESSION = 4;
const FIXED = 8;
/** Room for a usual header, written over once the body length is known; a view per length, made once. */
const HEAD_PLACEHOLDER = Buffer.alloc(512);
const headPlaceholders: Buffer[] = [];

/**
 * The bytes of a message, in one buffer. Throws an EncodeError when the message (or info)
 * cannot be carried as structured-clone data (functions, symbols, class instances of native types).
 *
 * Data is serialized straight after the header (whose body length is filled in afterwards): a
 * delivery's plain data into plain-clone-writer.ts' scratch buffer, copied out once; anything
 * else into V8's serializer's own buffer, never copied. A raw Frame's bytes are copied once.
 */
export function encodeWireMessage(message: WireMessage): Buffer {
  const originLength = Buffer.byteLength(message.origin, 'latin1');
  const sessionLength = message.session === null ? -1 : Buffer.byteLength(message.session);
  if (originLength > 0xff) throw new RangeError('wire message origin longer than 255 bytes');
  if (sessionLength > 0xffff) throw new RangeError('wire message session id longer than 65535 bytes');
  const headerFields = 1 + originLength + (sessionLength >= 0 ? 2 + sessionLength : 0);
  const headLength = FIXED + headerFields + 4;
  switch (message.kind) {
    case 'frame': {
      const wire = Buffer.allocUnsafe(headLength + message.data.length);
      writeHead(wire, message, KIND_DELIVER, message.binary ? FLAG_RAW_BINARY : FLAG_RAW_TEXT, headerFields, message.data.length);
      wire.set(message.data, headLength);
      return wire;
    }
    case 'deliver':
      return plainOrStructured(message, headerFields, headLength, message.message);
    case 'info':
      return structured(message, KIND_INFO, headerFields, headLength, message.info);
    case 'close': {
      const bodyLength = 2 + Buffer.byteLength(message.reason);
      const wire = Buffer.allocUnsafe(headLength + bodyLength);
      writeHead(wire, message, KIND_CLOSE, 0, headerFields, bodyLength);
      wire.writeUInt16BE(message.code, headLength);
      wire.write(message.reason, headLength + 2);
      return wire;
    }
  }
}

/**
 * Whether a payload is a version 2 message published by `origin` (its latin1 bytes), read
 * without decoding anything: a node drops its own messages at the cost of a byte comparison.
 */
export function isFromOrigin(payload: Uint8Array, origin: Uint8Array): boolean {
  const length = origin.length;
  if (payload.length < FIXED + 1 + length + 4 || payload[0] !== MAGIC_0 || payload[1] !== MAGIC_1 || payload[2] !== WIRE_MAJOR) return false;
  if (payload[FIXED] !== length) return false;
  for (let i = 0; i < length; i++) if (payload[FIXED + 1 + i] !== origin[i]) return false;
  return true;
}

/** The fixed part, origin, session and body length, at the start of `wire`. */
function writeHead(wire: Buffer, address: WireAddress, kind: number, flags: number, headerFields: number, bodyLength: number): void {
  wire[0] = MAGIC_0;
  wire[1] = MAGIC_1;
  wire[2] = WIRE_MAJOR;
  wire[3] = WIRE_MINOR;
  wire[4] = kind;
  wire[5] = address.session === null ? flags : flags | FLAG_SESSION;
  wire.writeUInt16BE(headerFields, 6);
  const originLength = wire.write(address.origin, FIXED + 1, 'latin1');
  wire[FIXED] = originLength;
  let offset = FIXED + 1 + originLength;
  if (address.session !== null) {
    const sessionLength = wire.write(address.session, offset + 2);
    wire.writeUInt16BE(sessionLength, offset);
    offset += 2 + sessionLength;
  }
  wire.writeUInt32BE(bodyLength, offset);
}

/** Reads a payload of a node-to-node topic; a rejection says why it is not a message this node can read. */
export function decodeWireMessage(payload: Uint8Array): WireMessage | WireRejection {
  const buffer = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  if (buffer.length < 2 || buffer[0] !== MAGIC_0) return rejected('no Riverside magic (external publishers use the ext: namespace)');
  if (buffer[1] === V1_MARK) return decodeV1(buffer);
  if (buffer[1] !== MAGIC_1 || buffer.length < FIXED + 4) return rejected('no Riverside magic, or shorter than a header');
  const major = buffer[2];
  if (major !== WIRE_MAJOR) return rejected(`wire version ${major}.${buffer[3]}, this node reads 1.x and ${WIRE_MAJOR}.x`);
  const kind = buffer[4];
  const flags = buffer[5];
  const headerEnd = FIXED + buffer.readUInt16BE(6);
  if (headerEnd + 4 > buffer.length) return rejected('header longer than the message');
  let offset = FIXED;
  const originEnd = offset + 1 + buffer[offset];
  if (originEnd > headerEnd) return rejected('origin overruns the header');
  const origin = buffer.toString('latin1', offset + 1, originEnd);
  offset = originEnd;
  let session: string | null = null;
  if ((flags & FLAG_SESSION) !== 0) {
    if (offset + 2 > headerEnd) return rejected('session id overruns the header');
    const sessionEnd = offset + 2 + buffer.readUInt16BE(offset);
    if (sessionEnd > headerEnd) return rejected('session id overruns the header');
    session = buffer.toString('utf8', offset + 2, sessionEnd);
    offset = sessionEnd;
  }
  // Optional fields of this or a newer minor version: none is read by 2.0; each is skipped.
  while (offset < headerEnd) {
    if (offset + 3 > headerEnd) return rejected('optional field overruns the header');
    offset += 3 + buffer.readUInt16BE(offset + 1);
    if (offset > headerEnd) return rejected('optional field overruns the header');
  }
  const bodyLength = buffer.readUInt32BE(headerEnd);
  const bodyStart = headerEnd + 4;
  if (bodyStart + bodyLength !== buffer.length) {
    return rejected(`body length ${bodyLength} does not match the ${buffer.length - bodyStart} bytes that follow`);
  }
  const body = buffer.subarray(bodyStart);
  switch (kind) {
    case KIND_DELIVER:
      if ((flags & (FLAG_RAW_BINARY | FLAG_RAW_TEXT)) !== 0) {
        return { kind: 'frame', origin, session, binary: (flags & FLAG_RAW_BINARY) !== 0, data: body };
      }
      return readStructured('deliver', origin, session, body);
    case KIND_INFO:
      return readStructured('info', origin, session, body);
    case KIND_CLOSE:
      if (body.length < 2) return rejected('close without a code');
      return { kind: 'close', origin, session, code: body.readUInt16BE(0), reason: body.toString('utf8', 2) };
    default:
      return rejected(`unknown kind ${kind}`);
  }
}

/** Version 1, as nestjs-riverside 0.1 nodes publish it: deliveries are already encoded frames, infos JSON. */
function decodeV1(buffer: Buffer): WireMessage | WireRejection {
  const HEADER = 5;
  if (buffer.length < HEADER || buffer.length < HEADER + buffer[4]) return rejected('version 1 message shorter than its header');
  const origin = buffer.toString('latin1', HEADER, HEADER + buffer[4]);
  const body = buffer.subarray(HEADER + buffer[4]);
  switch (buffer[2]) {
    case KIND_DELIVER:
      return { kind: 'frame', origin, session: null, binary: (buffer[3] & 1) !== 0, data: body };
    case KIND_INFO:
      try {
        return { kind: 'info', origin, session: null, info: JSON.parse(body.toString()) };
      } catch {
        return rejected('version 1 info that is not JSON');
      }
    case KIND_CLOSE:
      if (body.length < 2) return rejected('close without a code');
      return { kind: 'close', origin, session: null, code: body.readUInt16BE(0), reason: body.toString('utf8', 2) };
    default:
      return rejected(`unknown version 1 kind ${buffer[2]}`);
  }
}

/**
 * A delivery's message: plain data is written by plain-clone-writer.ts (no native serializer
 * per message, see there), anything else by V8. Only deliveries: what they carry is encoded by
 * the receiving node's codec, to which an object reached twice and two equal copies of it are
 * the same; an info reaches @OnInfo as it is, so it keeps V8's shared references.
 */
function plainOrStructured(address: WireAddress, headerFields: number, headLength: number, value: unknown): Buffer {
  let wire: Buffer | null;
  try {
    wire = writePlainClone(placeholder(headLength), value);
  } catch (error) {
    throw new EncodeError('the cluster wire format (structured clone)', error);
  }
  if (wire === null) return structured(address, KIND_DELIVER, headerFields, headLength, value);
  writeHead(wire, address, KIND_DELIVER, 0, headerFields, wire.length - headLength);
  return wire;
}

function placeholder(headLength: number): Buffer {
  return headLength <= HEAD_PLACEHOLDER.length ? (headPlaceholders[headLength] ??= HEAD_PLACEHOLDER.subarray(0, headLength)) : Buffer.alloc(headLength);
}

/** Header, then the value as structured-clone data, in the serializer's one buffer. */
function structured(address: WireAddress, kind: number, headerFields: number, headLength: number, value: unknown): Buffer {
  let wire: Buffer;
  try {
    const serializer = new DefaultSerializer();
    serializer.writeRawBytes(placeholder(headLength));
    serializer.writeHeader();
    serializer.writeValue(value);
    wire = serializer.releaseBuffer();
  } catch (error) {
    throw new EncodeError('the cluster wire format (structured clone)', error);
  }
  writeHead(wire, address, kind, 0, headerFields, wire.length - headLength);
  return wire;
}

function readStructured(kind: 'deliver' | 'info', origin: string, session: string | null, body: Buffer): WireMessage | WireRejection {
  let value: unknown;
  try {
    value = readPlainClone(body);
  } catch (error) {
    return rejected(`unreadable structured-clone body: ${(error as Error).message}`);
  }
  return kind === 'deliver' ? { kind, origin, session, message: value } : { kind, origin, session, info: value };
}

function rejected(reason: string): WireRejection {
  return { kind: 'rejected', reason };
}
