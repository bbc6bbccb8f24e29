import { SetMetadata } from '@nestjs/common';
import { ON_MESSAGE_METADATA } from '../../riverside.constants.js';

/**
 * Which decoded messages an `@OnMessage` method takes: a property name (`'join'`: objects
 * with an own property `join`) or one field and its value (`{ type: 'say' }`).
 * @publicApi
 */
export type MessageRoute = string | Readonly<Record<string, string | number | boolean>>;

/** @internal What `@OnMessage` stores. */
export interface OnMessageMetadata {
  readonly route: MessageRoute | null;
}

/**
 * Receives decoded frames with the session, one at a time in arrival order. A returned value
 * other than undefined is sent back.
 *
 * With a route, a class may have several: `@OnMessage('join')` takes objects that have an own
 * property `join`, `@OnMessage({ type: 'say' })` those whose `type` is `'say'`, and a bare
 * `@OnMessage()` takes the rest. Routes are tried in declaration order.
 * @publicApi
 */
export const OnMessage = (route?: MessageRoute): MethodDecorator =>
  SetMetadata<string, OnMessageMetadata>(ON_MESSAGE_METADATA, { route: route ?? null });
