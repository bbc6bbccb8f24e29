/**
 * Server-to-client WebSocket frames (RFC 6455 5.2: FIN set, no mask, no RSV bits), built by
 * hand so that a frame is one buffer: header and payload are written together, with one copy
 * of the payload at most, instead of ws's header buffer + payload buffer per send.
 */

const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;

/** Up to this, the payload is copied next to its header; beyond, it is written as its own buffer. */
export const MERGE_LIMIT = 64 * 1024;

function headerLength(payloadLength: number): number {
  return payloadLength < 126 ? 2 : payloadLength < 65536 ? 4 : 10;
}

function writeHeader(target: Buffer, binary: boolean, payloadLength: number): number {
  target[0] = 0x80 | (binary ? OPCODE_BINARY : OPCODE_TEXT);
  if (payloadLength < 126) {
    target[1] = payloadLength;
    return 2;
  }
  if (payloadLength < 65536) {
    target[1] = 126;
    target.writeUInt16BE(payloadLength, 2);
    return 4;
  }
  target[1] = 127;
  target.writeUInt16BE(0, 2);
  target.writeUIntBE(payloadLength, 4, 6);
  return 10;
}

/** One buffer: the frame of a string whose UTF-8 length (`bytes`) the caller has measured. */
export function frameString(text: string, bytes: number, binary: boolean): Buffer {
  const offset = headerLength(bytes);
  const frame = Buffer.allocUnsafe(offset + bytes);
  writeHeader(frame, binary, bytes);
  frame.write(text, offset, bytes, 'utf8');
  return frame;
}

/**
 * The frame of a byte payload: one buffer up to MERGE_LIMIT, else the header and the payload
 * itself (not copied).
 */
export function frameBytes(payload: Uint8Array, binary: boolean): Buffer[] {
  const length = payload.byteLength;
  const offset = headerLength(length);
  if (length > MERGE_LIMIT) {
    const header = Buffer.allocUnsafe(offset);
    writeHeader(header, binary, length);
    return [header, Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, length)];
  }
  const frame = Buffer.allocUnsafe(offset + length);
  writeHeader(frame, binary, length);
  frame.set(payload, offset);
  return [frame];
}
