import type { FrameType } from './codec.interface.js';

/**
 * A frame that bypasses the codec: sent as it is wherever a message can be sent
 * (`session.send`, a handler's return value, `delivery.deliver`).
 * @publicApi
 */
export class Frame {
  private constructor(
    readonly type: FrameType,
    readonly data: string | Uint8Array,
  ) {}

  /** A text frame with this string as its payload. */
  static text(data: string): Frame {
    if (typeof data !== 'string') throw new TypeError('Frame.text() takes a string');
    return new Frame('text', data);
  }

  /** A binary frame with these bytes as its payload. */
  static binary(data: Uint8Array): Frame {
    if (!(data instanceof Uint8Array)) throw new TypeError('Frame.binary() takes a Buffer or Uint8Array');
    return new Frame('binary', data);
  }
}
