import { Injectable } from '@nestjs/common';
import { createRequire } from 'node:module';
import { MissingPackageError } from '../errors/missing-package.error.js';
import { type Codec, INVALID_MESSAGE } from './codec.interface.js';

interface MsgpackrPackr {
  pack(value: unknown): Buffer;
  unpack(data: Buffer): unknown;
}
interface MsgpackrModule {
  Packr: new (options?: Record<string, unknown>) => MsgpackrPackr;
}

function loadMsgpackr(): MsgpackrModule {
  try {
    return createRequire(import.meta.url)('msgpackr') as MsgpackrModule;
  } catch {
    throw new MissingPackageError('msgpackr', 'MessagePackCodec');
  }
}

/**
 * Binary frames carrying MessagePack, through the optional peer dependency `msgpackr`.
 * Constructing it without `msgpackr` installed throws a {@link MissingPackageError}.
 * @publicApi
 */
@Injectable()
export class MessagePackCodec implements Codec<unknown> {
  readonly frameType = 'binary' as const;
  // useRecords: false keeps the output plain MessagePack that any client library reads.
  private readonly packr = new (loadMsgpackr().Packr)({ useRecords: false });

  decode(data: Buffer): unknown {
    try {
      return this.packr.unpack(data);
    } catch {
      return INVALID_MESSAGE;
    }
  }

  encode(message: unknown): Buffer {
    return this.packr.pack(message);
  }
}
