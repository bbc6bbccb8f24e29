/**
 * What `Codec.decode` returns for a frame it cannot read. A sentinel instead of an exception:
 * undecodable client input is expected on a public socket and must stay cheap.
 * @publicApi
 */
export const INVALID_MESSAGE: unique symbol = Symbol.for('riverside.invalid_message');

/** The WebSocket frame type a codec reads and writes: text (UTF-8) or binary. @publicApi */
export type FrameType = 'text' | 'binary';

/**
 * Turns frames into messages and back. One codec serves a handler; the default is JSON.
 *
 * A codec may be given as an instance or as a class; a class is resolved through Nest's DI
 * (registered provider first, otherwise instantiated with its dependencies injected).
 * @publicApi
 */
export interface Codec<TMessage = unknown> {
  /** The frame type this codec reads and writes. Frames of the other type are not decoded. */
  readonly frameType: FrameType;
  /** Reads a frame payload; returns {@link INVALID_MESSAGE} when it cannot. Should not throw. */
  decode(data: Buffer): TMessage | typeof INVALID_MESSAGE;
  /** Writes a message; throws when the value cannot be represented. */
  encode(message: TMessage): string | Uint8Array;
}

/**
 * DI token of the module-wide default codec (the `codec` option, JSON unless set).
 * @publicApi
 */
export const RIVERSIDE_CODEC = Symbol('RIVERSIDE_CODEC');

export function isCodec(value: unknown): value is Codec {
  const candidate = value as Partial<Codec> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    (candidate.frameType === 'text' || candidate.frameType === 'binary') &&
    typeof candidate.encode === 'function' &&
    typeof candidate.decode === 'function'
  );
}
