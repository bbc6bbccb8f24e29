import { Injectable } from '@nestjs/common';
import type { Codec } from './codec.interface.js';

/**
 * Text frames as plain strings, untouched.
 * @publicApi
 */
@Injectable()
export class RawTextCodec implements Codec<string> {
  readonly frameType = 'text' as const;

  decode(data: Buffer): string {
    return data.toString();
  }

  encode(message: string): string {
    if (typeof message !== 'string') throw new TypeError(`RawTextCodec sends strings, got ${typeof message}`);
    return message;
  }
}
