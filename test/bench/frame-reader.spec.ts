import { describe, expect, it } from 'vitest';
import { FrameReader, OP_TEXT } from '../../bench/load/wire.js';

// The load generators of bench:scale read every socket into one reused buffer (`onread`): the
// frame reader must copy the part of a frame that continues in a later read, or the latencies it
// reads would come from whatever the buffer held next.
function serverFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  return Buffer.concat([Buffer.from([0x80 | OP_TEXT, payload.length]), payload]);
}

describe('FrameReader over a reused read buffer', () => {
  it('hands over frames that span reads intact, though the buffer was overwritten in between', () => {
    const seen: string[] = [];
    const reader = new FrameReader(
      () => true,
      (_opcode, payload) => seen.push(payload.toString()),
    );
    const stream = Buffer.concat([serverFrame('{"t":123456789012345}'), serverFrame('{"t":42,"seq":7}')]);
    const readBuffer = Buffer.alloc(64);
    // Reads of 9 bytes: each frame starts in one read and ends in a later one.
    for (let at = 0; at < stream.length; at += 9) {
      const end = stream.copy(readBuffer, 0, at, Math.min(at + 9, stream.length));
      readBuffer.fill(0x78, end); // what a later read would leave there
      reader.push(readBuffer, end);
      readBuffer.fill(0x78);
    }
    expect(seen).toEqual(['{"t":123456789012345}', '{"t":42,"seq":7}']);
  });

  it('reads only the bytes up to `end` of the buffer', () => {
    const seen: string[] = [];
    const reader = new FrameReader(
      () => true,
      (_opcode, payload) => seen.push(payload.toString()),
    );
    const readBuffer = Buffer.alloc(64, 0x81);
    const end = serverFrame('{"t":1}').copy(readBuffer);
    reader.push(readBuffer, end);
    expect(seen).toEqual(['{"t":1}']);
    expect(reader.count).toBe(0);
  });
});
