import { Injectable, type Type } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  ON_AUTHENTICATE_METADATA,
  ON_INFO_METADATA,
  ON_INIT_METADATA,
  ON_MESSAGE_METADATA,
  ON_TERMINATE_METADATA,
  RIVERSIDE_HANDLER_METADATA,
} from '../riverside.constants.js';
import type { MessageRoute, OnMessageMetadata } from './decorators/on-message.decorator.js';
import type { RiversideHandlerOptions } from './decorators/riverside-handler.decorator.js';

export type CallbackKind = 'authenticate' | 'init' | 'message' | 'info' | 'terminate';

export const CALLBACK_METADATA: Readonly<Record<CallbackKind, string>> = {
  authenticate: ON_AUTHENTICATE_METADATA,
  init: ON_INIT_METADATA,
  message: ON_MESSAGE_METADATA,
  info: ON_INFO_METADATA,
  terminate: ON_TERMINATE_METADATA,
};

export const CALLBACK_DECORATOR: Readonly<Record<CallbackKind, string>> = {
  authenticate: '@OnAuthenticate',
  init: '@OnInit',
  message: '@OnMessage',
  info: '@OnInfo',
  terminate: '@OnTerminate',
};

/** Reads what the decorators stored. No logic beyond the Reflector. */
@Injectable()
export class HandlerMetadataAccessor {
  constructor(private readonly reflector: Reflector) {}

  getHandlerOptions(target: Type<unknown> | Function): RiversideHandlerOptions | undefined {
    return this.reflector.get(RIVERSIDE_HANDLER_METADATA, target);
  }

  isCallback(kind: CallbackKind, method: Function): boolean {
    return this.reflector.get(CALLBACK_METADATA[kind], method) !== undefined;
  }

  getMessageRoute(method: Function): MessageRoute | null {
    return (this.reflector.get(ON_MESSAGE_METADATA, method) as OnMessageMetadata | undefined)?.route ?? null;
  }
}
