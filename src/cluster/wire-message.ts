import { isUtf8 } from 'node:buffer';

/**
 * What nodes send each other through a transport: a discriminated union with a version.
 *
 * Binary layout: `0xFF, version, kind, flags, originLength, origin..., body`. 0xFF never starts
 * UTF-8 text, so anything else on a topic is an external publisher's payload: written to the
 * sessions as it is (a text frame when it is valid UTF-8, else a binary frame).
 */
export type WireMessage =
  | { readonly v: 1; readonly kind: 'deliver'; readonly origin: string; readonly binary: boolean; readonly data: Buffer }
  | { readonly v: 1; readonly kind: 'info'; readonly origin: string; readonly info: unknown }
  | { readonly v: 1; readonly kind: 'close'; readonly origin: string; readonly code: number; readonly reason: string }
  | { readonly v: 0; readonly kind: 'external'; readonly binary: boolean; readonly data: Buffer };

const MAGIC = 0xff;
const VERSION = 1;
const KINDS = ['deliver', 'info', 'close'] as const;
const FLAG_BINARY = 1;
const HEADER = 5;

export function encodeWireMessage(message: Exclude<WireMessage, { kind: 'external' }>): Buffer {
  const origin = Buffer.from(message.origin, 'latin1');
  let body: Buffer;
  let flags = 0;
  switch (message.kind) {
    case 'deliver':
      body = message.data;
      if (message.binary) flags |= FLAG_BINARY;
      break;
    case 'info':
      body = Buffer.from(JSON.stringify(message.info) ?? 'null');
      break;
    case 'close':
      body = Buffer.alloc(2 + Buffer.byteLength(message.reason));
      body.writeUInt16BE(message.code, 0);
      body.write(message.reason, 2);
      break;
  }
  const header = Buffer.allocUnsafe(HEADER + origin.length);
  header[0] = MAGIC;
  header[1] = VERSION;
  header[2] = KINDS.indexOf(message.kind);
  header[3] = flags;
  header[4] = origin.length;
  origin.copy(header, HEADER);
  return Buffer.concat([header, body]);
}

/** Reads a payload from a transport; null when it is a Riverside message it cannot read. */
export function decodeWireMessage(payload: Uint8Array): WireMessage | null {
  const buffer = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  if (buffer.length === 0 || buffer[0] !== MAGIC) {
    return { v: 0, kind: 'external', binary: !isUtf8(buffer), data: buffer };
  }
  if (buffer.length < HEADER || buffer[1] !== VERSION || buffer.length < HEADER + buffer[4]) return null;
  const origin = buffer.toString('latin1', HEADER, HEADER + buffer[4]);
  const body = buffer.subarray(HEADER + buffer[4]);
  switch (KINDS[buffer[2]]) {
    case 'deliver':
      return { v: 1, kind: 'deliver', origin, binary: (buffer[3] & FLAG_BINARY) !== 0, data: body };
    case 'info':
      try {
        return { v: 1, kind: 'info', origin, info: JSON.parse(body.toString()) };
      } catch {
        return null;
      }
    case 'close':
      if (body.length < 2) return null;
      return { v: 1, kind: 'close', origin, code: body.readUInt16BE(0), reason: body.toString('utf8', 2) };
    default:
      return null;
  }
}
