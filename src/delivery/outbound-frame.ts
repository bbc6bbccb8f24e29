import * as wsModule from 'ws';
import type { WebSocket } from 'ws';

// ws exports its Sender at runtime but @types/ws does not declare it.
const { Sender } = wsModule as unknown as {
  Sender: { frame(data: Buffer, options: Record<string, unknown>): Buffer[] };
};

/**
 * A message encoded once and framed once, then written to any number of sockets.
 *
 * Writing the pre-built frame bypasses `ws.send()`, which would rebuild the header per socket.
 * That is only safe while ws's sender is idle and no extension (permessage-deflate) rewrites
 * payloads; otherwise the frame goes through `ws.send()` as usual.
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

  /** Writes the frame; the caller has checked that the socket is open. */
  writeTo(ws: WebSocket): void {
    const internals = ws as unknown as WsInternals;
    const socket = internals._socket;
    if (internals._sender._state !== SENDER_IDLE || hasExtensions(internals) || socket === null) {
      ws.send(this.data, this.binary ? SEND_BINARY : SEND_TEXT);
      return;
    }
    const chunks = (this.chunks ??= frameOnce(this.data, this.binary));
    if (chunks.length === 1) {
      socket.write(chunks[0]);
    } else {
      socket.cork();
      socket.write(chunks[0]);
      socket.write(chunks[1]);
      socket.uncork();
    }
  }
}

/**
 * Header and payload, merged into one buffer when the payload is small: then every socket gets
 * one plain write instead of cork + two writes + uncork (a writev). A large payload keeps its
 * own buffer, so as not to copy it.
 */
function frameOnce(data: Buffer, binary: boolean): Buffer[] {
  const chunks = Sender.frame(data, { fin: true, opcode: binary ? 2 : 1, mask: false, readOnly: true, rsv1: false });
  return chunks.length === 2 && data.length <= MERGE_LIMIT ? [Buffer.concat(chunks)] : chunks;
}

const MERGE_LIMIT = 64 * 1024;
/** ws.send() options, shared rather than built per send. */
export const SEND_TEXT = Object.freeze({ binary: false });
export const SEND_BINARY = Object.freeze({ binary: true });
/** ws's Sender state DEFAULT: nothing queued behind a compression or a Blob read. */
const SENDER_IDLE = 0;

interface WsInternals {
  _socket: import('node:net').Socket | null;
  _sender: { _state: number };
  _extensions: Record<string, unknown>;
}

function hasExtensions(ws: WsInternals): boolean {
  for (const _ in ws._extensions) return true;
  return false;
}

