import { describe, expect, it } from 'vitest';
import { Frame, FrameList } from 'nestjs-riverside';
import { EncodedMessage } from '../../src/delivery/encoded-message.js';

// Frame.list() / Frame.close(): the raw frame lists a callback may return (issue 9 point 5).

describe('Frame.list and Frame.close', () => {
  it('keeps messages and frames in order and stops at the first close', () => {
    const text = Frame.text('raw');
    const list = Frame.list({ a: 1 }, text, Frame.list({ b: 2 }, Frame.close(4000, 'done'), { c: 3 }), { d: 4 });
    expect(list).toBeInstanceOf(FrameList);
    expect(list.messages).toEqual([{ a: 1 }, text, { b: 2 }]);
    expect(list.close).toEqual({ code: 4000, reason: 'done' });
  });

  it('Frame.close takes 1000 or 3000-4999 and a reason of at most 123 bytes', () => {
    expect(Frame.close().close).toEqual({ code: 1000, reason: '' });
    expect(() => Frame.close(1011)).toThrow('Close code must be 1000 or 3000-4999, got 1011');
    expect(() => Frame.close(4000, 'x'.repeat(124))).toThrow('Close reason must fit in 123 bytes');
  });

  it('cannot be delivered: DeliveryService refuses it with a clear error', () => {
    expect(() => new EncodedMessage(Frame.list({ a: 1 }))).toThrow(/cannot be delivered: deliver each message/);
  });
});
