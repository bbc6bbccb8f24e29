import { assertApplicationCloseCode } from '../connection/close-codes.js';
import type { FrameType } from './codec.interface.js';

/**
 * A frame that bypasses the codec: sent as it is wherever a message can be sent
 * (`session.send`, a handler's return value, `delivery.deliver`).
 * @publicApi
 */
export class Frame {
  private constructor(
    readonly type: FrameType,
    readonly data: string | Uint8Array,
  ) {}

  /** A text frame with this string as its payload. */
  static text(data: string): Frame {
    if (typeof data !== 'string') throw new TypeError('Frame.text() takes a string');
    return new Frame('text', data);
  }

  /** A binary frame with these bytes as its payload. */
  static binary(data: Uint8Array): Frame {
    if (!(data instanceof Uint8Array)) throw new TypeError('Frame.binary() takes a Buffer or Uint8Array');
    return new Frame('binary', data);
  }

  /**
   * Several messages written in order by one return value or `session.send()`, Cowboy style:
   * messages (encoded with the handler's codec), `Frame`s, and at most one `Frame.close()`,
   * after which nothing is sent (items after it are dropped here).
   */
  static list(...items: unknown[]): FrameList {
    const messages: unknown[] = [];
    for (const item of items) {
      if (item instanceof FrameList) {
        messages.push(...item.messages);
        if (item.close !== null) return new FrameList(messages, item.close);
      } else {
        messages.push(item);
      }
    }
    return new FrameList(messages, null);
  }

  /**
   * Closes the connection with this code (1000 or 3000-4999) and reason, as `session.close()`
   * does; `@OnTerminate` gets 'stop'. Return it, or end a `Frame.list(...)` with it.
   */
  static close(code = 1000, reason = ''): FrameList {
    assertApplicationCloseCode(code, reason);
    return new FrameList([], { code, reason });
  }
}

/**
 * What `Frame.list()` and `Frame.close()` build: messages to write in order, then an optional
 * close. Sent by a callback's return value or `session.send()`, not by `DeliveryService`.
 * @publicApi
 */
export class FrameList {
  /** @internal */
  constructor(
    readonly messages: readonly unknown[],
    readonly close: { readonly code: number; readonly reason: string } | null,
  ) {
    Object.freeze(this);
  }
}
