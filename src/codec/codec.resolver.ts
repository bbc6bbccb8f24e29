import type { Type } from '@nestjs/common';
import type { ModuleRef } from '@nestjs/core';
import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import { invalidOptionMessage } from '../riverside.messages.js';
import { type Codec, isCodec } from './codec.interface.js';

/**
 * Turns a codec option into an instance: an instance as it is; a class from the container when
 * it is a registered provider, otherwise instantiated with its dependencies injected.
 */
export async function resolveCodec(codec: Codec | Type<Codec>, moduleRef: ModuleRef, option: string): Promise<Codec> {
  let instance: unknown = codec;
  if (typeof codec === 'function') {
    try {
      instance = moduleRef.get(codec, { strict: false });
    } catch {
      instance = await moduleRef.create(codec);
    }
  }
  if (!isCodec(instance)) {
    throw new InvalidOptionsError(
      option,
      invalidOptionMessage(option, codec, "a codec with frameType ('text' | 'binary'), encode() and decode()"),
    );
  }
  return instance;
}
