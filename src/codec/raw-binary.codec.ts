import { Injectable } from '@nestjs/common';
import type { Codec } from './codec.interface.js';

/**
 * Binary frames as Buffers, untouched.
 * @publicApi
 */
@Injectable()
export class RawBinaryCodec implements Codec<Uint8Array> {
  readonly frameType = 'binary' as const;

  decode(data: Buffer): Buffer {
    return data;
  }

  encode(message: Uint8Array): Uint8Array {
    if (!(message instanceof Uint8Array)) {
      throw new TypeError(`RawBinaryCodec sends Buffers or Uint8Arrays, got ${typeof message}`);
    }
    return message;
  }
}
