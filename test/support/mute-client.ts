import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

/** A client that completes the upgrade, then only listens: it never answers a close frame. */
export interface MuteClient {
  readonly socket: Socket;
  /** What the server sent after the 101. */
  readonly frames: Buffer[];
  /** Resolves with performance.now() when the server ends the TCP connection. */
  readonly ended: Promise<number>;
}

/** Upgrades on `path` of 127.0.0.1:`port` by hand and resolves once the 101 arrived. */
export function muteClient(port: number, path = '/'): Promise<MuteClient> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const frames: Buffer[] = [];
    const ended = new Promise<number>((done) => socket.once('end', () => done(performance.now())));
    let head = Buffer.alloc(0);
    let upgraded = false;
    socket.on('data', (chunk: Buffer) => {
      if (upgraded) return void frames.push(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      if (!head.subarray(0, 12).toString().includes('101')) return reject(new Error(`not upgraded: ${head.toString()}`));
      upgraded = true;
      if (head.length > end + 4) frames.push(head.subarray(end + 4));
      resolve({ socket, frames, ended });
    });
    socket.on('error', reject);
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
  });
}

/** A masked text frame carrying `text` (mask key 0, so the payload reads as it is). */
export function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const length = payload.length;
  const header = length < 126 ? Buffer.from([0x81, 0x80 | length]) : Buffer.from([0x81, 0x80 | 126, length >> 8, length & 0xff]);
  return Buffer.concat([header, Buffer.alloc(4), payload]);
}

/** The close code of the first frame the server sent, or null when it was not a close frame. */
export function closeCodeOf(frames: Buffer[]): number | null {
  const bytes = Buffer.concat(frames);
  return bytes[0] === 0x88 && bytes.length >= 4 ? bytes.readUInt16BE(2) : null;
}
