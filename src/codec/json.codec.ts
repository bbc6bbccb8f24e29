import { Injectable } from '@nestjs/common';
import { type Codec, INVALID_MESSAGE } from './codec.interface.js';

/**
 * The default codec: text frames carrying any JSON value (objects, arrays, strings, numbers,
 * booleans, null). Invalid JSON decodes to {@link INVALID_MESSAGE}.
 * @publicApi
 */
@Injectable()
export class JsonCodec implements Codec<unknown> {
  readonly frameType = 'text' as const;

  decode(data: Buffer): unknown {
    try {
      return JSON.parse(data.toString());
    } catch {
      return INVALID_MESSAGE;
    }
  }

  encode(message: unknown): string {
    const text = JSON.stringify(message);
    // JSON.stringify returns undefined for undefined, functions and symbols: nothing to send.
    if (text === undefined) throw new TypeError(`a ${typeof message} has no JSON representation`);
    return text;
  }
}
