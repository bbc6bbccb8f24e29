import { Injectable } from '@nestjs/common';
import { requireOptional } from '../optional-package.js';
import { type Codec, INVALID_MESSAGE } from './codec.interface.js';

interface MsgpackrPackr {
  pack(value: unknown): Buffer;
  unpack(data: Buffer): unknown;
}
interface MsgpackrModule {
  Packr: new (options?: Record<string, unknown>) => MsgpackrPackr;
  /** What msgpackr returns for the byte 0xC1, which MessagePack never uses. */
  C1: unknown;
}

function loadMsgpackr(): MsgpackrModule {
  return requireOptional<MsgpackrModule>('msgpackr', 'MessagePackCodec');
}

/**
 * Binary frames carrying MessagePack, through the optional peer dependency `msgpackr`.
 * Constructing it without `msgpackr` installed throws a {@link MissingPackageError}.
 * @publicApi
 */
@Injectable()
export class MessagePackCodec implements Codec<unknown> {
  readonly frameType = 'binary' as const;
  private readonly msgpackr = loadMsgpackr();
  // useRecords: false keeps the output plain MessagePack that any client library reads;
  // variableMapSize picks the smallest map header (fixmap for small objects).
  private readonly packr = new this.msgpackr.Packr({ useRecords: false, variableMapSize: true });

  decode(data: Buffer): unknown {
    try {
      const value = this.packr.unpack(data);
      return value === this.msgpackr.C1 ? INVALID_MESSAGE : value;
    } catch {
      return INVALID_MESSAGE;
    }
  }

  encode(message: unknown): Buffer {
    return this.packr.pack(message);
  }
}
