import { SetMetadata, type Type } from '@nestjs/common';
import type { Codec } from '../../codec/codec.interface.js';
import { RIVERSIDE_HANDLER_METADATA } from '../../riverside.constants.js';

/**
 * Options of `@RiversideHandler()`: where the handler is served and how its frames are read.
 * @publicApi
 */
export interface RiversideHandlerOptions {
  /** The WebSocket path this handler serves. @default the module's `path` option */
  path?: string;
  /** Codec of this handler (instance or injectable class). @default the module's `codec` option */
  codec?: Codec | Type<Codec>;
  /** Subprotocols this handler speaks, in order of preference. @default the module's `subprotocols` option */
  subprotocols?: readonly string[];
  /**
   * A correlation field: when an inbound message object has it, the reply object (return value,
   * each value of a returned Observable, or error frame) gets the same field and value.
   * @default none
   */
  replyRef?: string;
}

/**
 * Marks a provider as the handler of one WebSocket path. Add the class to a module's
 * `providers`; its `@OnAuthenticate`, `@OnInit`, `@OnMessage`, `@OnInfo` and `@OnTerminate`
 * methods are found once, at bootstrap.
 * @publicApi
 */
export const RiversideHandler = (options: RiversideHandlerOptions = {}): ClassDecorator =>
  SetMetadata(RIVERSIDE_HANDLER_METADATA, options);
