import { frameBytes } from './wire-frame.js';

/**
 * A message encoded once and framed once (on first use), then written to any number of
 * sockets by their OutboundWriter.
 */
export class OutboundFrame {
  private chunks: Buffer[] | null = null;
  readonly binary: boolean;
  readonly data: Buffer;

  constructor(data: string | Uint8Array, binary: boolean) {
    this.data = typeof data === 'string' ? Buffer.from(data) : Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.binary = binary;
  }

  get byteLength(): number {
    return this.data.length;
  }

  /** The wire frame: one buffer, or header + payload for a large payload. */
  get framed(): Buffer[] {
    return (this.chunks ??= frameBytes(this.data, this.binary));
  }
}

/** ws.send() options, shared rather than built per send. */
export const SEND_TEXT = Object.freeze({ binary: false });
export const SEND_BINARY = Object.freeze({ binary: true });
