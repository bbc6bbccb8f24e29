import type { Codec } from '../codec/codec.interface.js';
import { Frame, FrameList } from '../codec/frame.js';
import { EncodeError } from '../errors/encode.error.js';
import { OutboundFrame } from './outbound-frame.js';

/**
 * One delivery's message and the frames built from it: encoded at most once per codec, for
 * local sockets and other nodes alike. Nearly every app has one codec, so the first is kept in
 * fields and compared by identity; a map exists only when a second codec shows up.
 */
export class EncodedMessage {
  private readonly raw: OutboundFrame | null;
  private firstCodec: Codec | null = null;
  private firstFrame: OutboundFrame | null = null;
  private others: Map<Codec, OutboundFrame> | null = null;

  constructor(private readonly message: unknown) {
    if (message instanceof FrameList) {
      throw new TypeError(
        'A FrameList (Frame.list() / Frame.close()) is returned by a callback or passed to session.send(); ' +
          'it cannot be delivered: deliver each message, and close with delivery.close().',
      );
    }
    this.raw = message instanceof Frame ? new OutboundFrame(message.data, message.type === 'binary') : null;
  }

  /** The frame for sockets using this codec; throws an EncodeError when it cannot encode. */
  frameFor(codec: Codec): OutboundFrame {
    if (this.raw !== null) return this.raw;
    if (codec === this.firstCodec) return this.firstFrame as OutboundFrame;
    if (this.firstCodec === null) {
      this.firstFrame = encode(codec, this.message);
      this.firstCodec = codec;
      return this.firstFrame;
    }
    let frame = this.others?.get(codec);
    if (frame === undefined) {
      frame = encode(codec, this.message);
      (this.others ??= new Map()).set(codec, frame);
    }
    return frame;
  }
}

function encode(codec: Codec, message: unknown): OutboundFrame {
  return new OutboundFrame(encodeWith(codec, message), codec.frameType === 'binary');
}

/** The codec's encoding of a message; a codec that throws becomes an EncodeError naming it. */
export function encodeWith(codec: Codec, message: unknown): string | Uint8Array {
  try {
    return codec.encode(message);
  } catch (error) {
    throw new EncodeError(codec.constructor?.name ?? 'codec', error);
  }
}
