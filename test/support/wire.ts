/**
 * Node-to-node messages as other releases would publish them, for the rolling-upgrade tests.
 */

/**
 * A version 2.0 message as a node of version 2.1 would send it: minor 1, an unknown flag bit and
 * an unknown optional header field (tag 0x7f, 3 bytes), both of which 2.0 must skip.
 */
export function withNextMinor(message: Buffer): Buffer {
  const headerEnd = 8 + message.readUInt16BE(6);
  const extra = Buffer.from([0x7f, 0, 3, 1, 2, 3]);
  const next = Buffer.concat([message.subarray(0, headerEnd), extra, message.subarray(headerEnd)]);
  next[3] = 1;
  next[5] |= 0x80;
  next.writeUInt16BE(headerEnd - 8 + extra.length, 6);
  return next;
}

/** A version 2.0 message relabelled as the next major version (3.0), which 2.x must reject. */
export function asNextMajor(message: Buffer): Buffer {
  const next = Buffer.from(message);
  next[2] = 3;
  return next;
}

/** A version 1 message (nestjs-riverside 0.1): `FF 01 kind flags originLength origin body`. */
export function versionOne(kind: 'deliver' | 'info' | 'close', body: Buffer, origin = 'old-node', binary = false): Buffer {
  const header = Buffer.from([0xff, 0x01, ['deliver', 'info', 'close'].indexOf(kind), binary ? 1 : 0, origin.length]);
  return Buffer.concat([header, Buffer.from(origin, 'latin1'), body]);
}
