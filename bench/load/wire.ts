import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';

// The load generators speak WebSocket themselves instead of using a client library: the
// server must be the bottleneck, so the client side has to cost as little as possible per
// message. Requests are pre-built frames written in batches; responses are counted by their
// headers without decoding payloads.

export const OP_TEXT = 0x1;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
const OP_PONG = 0xa;

/**
 * A client frame. Clients must mask (RFC 6455 5.3); an all-zero key is a valid key that leaves
 * the payload bytes as they are, so a frame can be built once and written many times.
 */
export function clientFrame(payload: string | Buffer, opcode = OP_TEXT): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const length = data.length;
  const header = length < 126 ? 6 : length < 65536 ? 8 : 14;
  const frame = Buffer.alloc(header + length);
  frame[0] = 0x80 | opcode;
  if (length < 126) {
    frame[1] = 0x80 | length;
  } else if (length < 65536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  data.copy(frame, header);
  return frame;
}

export const pongFrame = (payload: Buffer): Buffer => clientFrame(payload, OP_PONG);

const READ_HEADER = 0;
const READ_PAYLOAD = 1;

/**
 * Splits the server's byte stream into frames (servers never mask). Data frames are only
 * counted unless `wantPayload` asks for their bytes; those, and every control frame whose
 * payload was asked for, go to `onFrame`.
 */
export class FrameReader {
  /** Data frames counted without being handed to onFrame. */
  count = 0;
  private readonly header = Buffer.alloc(10);
  private have = 0;
  private need = 2;
  private state = READ_HEADER;
  private opcode = 0;
  private left = 0;
  private parts: Buffer[] | null = null;

  constructor(
    private readonly wantPayload: (opcode: number, length: number) => boolean,
    private readonly onFrame: (opcode: number, payload: Buffer) => void,
  ) {}

  /**
   * Reads `chunk[0, end)`. The chunk may be a buffer that is reused once this returns (a
   * socket's `onread` buffer): a payload handed to `onFrame` is only valid during that call, and
   * the part of a frame that continues in a later chunk is copied.
   */
  push(chunk: Buffer, end = chunk.length): void {
    let i = 0;
    while (i < end) {
      if (this.state === READ_HEADER) {
        this.header[this.have++] = chunk[i++];
        if (this.have === 2) {
          const length7 = this.header[1] & 0x7f;
          this.need = length7 === 126 ? 4 : length7 === 127 ? 10 : 2;
        }
        if (this.have < this.need) continue;
        this.startPayload();
        continue;
      }
      const take = Math.min(this.left, end - i);
      if (this.parts !== null) {
        const part = chunk.subarray(i, i + take);
        this.parts.push(take < this.left ? Buffer.from(part) : part);
      }
      i += take;
      this.left -= take;
      if (this.left === 0) this.endFrame();
    }
  }

  private startPayload(): void {
    const h = this.header;
    this.opcode = h[0] & 0x0f;
    const length7 = h[1] & 0x7f;
    const length = length7 === 126 ? h.readUInt16BE(2) : length7 === 127 ? Number(h.readBigUInt64BE(2)) : length7;
    this.have = 0;
    this.need = 2;
    this.parts = this.wantPayload(this.opcode, length) ? [] : null;
    this.left = length;
    this.state = READ_PAYLOAD;
    if (length === 0) this.endFrame();
  }

  private endFrame(): void {
    this.state = READ_HEADER;
    const parts = this.parts;
    this.parts = null;
    if (parts === null) {
      if (this.opcode < OP_CLOSE) this.count++;
      return;
    }
    this.onFrame(this.opcode, parts.length === 1 ? parts[0] : Buffer.concat(parts));
  }
}

export interface Target {
  host: string;
  port: number;
  path: string;
  localAddress?: string;
  /**
   * Source port (with `localAddress`). Without it the kernel picks a free ephemeral port on the
   * bound address, and that search grows with the ports in use: past ~8,000 sockets on one
   * source address it costs the load generator more CPU than the server spends on the handshake.
   */
  localPort?: number;
}

/** HTTP upgrade to WebSocket; resolves with the raw socket and any bytes read past the 101. */
export function upgrade(target: Target, timeoutMs = 15_000): Promise<{ socket: Socket; head: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: target.host,
      port: target.port,
      path: target.path,
      localAddress: target.localAddress,
      agent: false,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
      },
    });
    const timer = setTimeout(() => req.destroy(new Error(`handshake timed out after ${timeoutMs} ms`)), timeoutMs);
    req.on('upgrade', (_res, socket, head) => {
      clearTimeout(timer);
      socket.setNoDelay(true);
      resolve({ socket, head });
    });
    req.on('response', (res) => {
      clearTimeout(timer);
      res.resume();
      reject(new Error(`handshake on ${target.path} answered HTTP ${res.statusCode}`));
    });
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.end();
  });
}

/** Runs `task` over `items` with at most `limit` in flight (a connection storm would overflow the accept backlog). */
export async function pooled<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

const HEADER_END = Buffer.from('\r\n\r\n');

/**
 * The one buffer every `rawUpgrade` socket of this process reads into (Node's `onread` option):
 * Node calls back synchronously after each read, so one buffer serves them all, and a read
 * allocates nothing and skips the stream machinery behind 'data' events. The load generators of
 * bench:scale receive thousands of small frames a second over 17,000 sockets each; with a
 * Buffer and a stream 'data' event per read they cost the machine about as much CPU as the
 * server under test (see bench/PROFILE.md, "The Redis tail, stop 17").
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** Where a raw connection's bytes go after its upgrade: `bytes[0, end)`, valid during the call only. */
export type ByteSink = (bytes: Buffer, end: number) => void;

/**
 * The same upgrade as `upgrade()`, written on a bare TCP socket: no http.ClientRequest, a
 * fraction of its CPU and memory per connection, for the load generators that open tens of
 * thousands of them (bench:scale). Rejects like `upgrade()` (`... answered HTTP <status>`).
 * The socket reads into READ_BUFFER and emits no 'data' events: the bytes after the 101 go to
 * `sink` (those read with the 101 are copied and handed over first, once `sink` is set).
 */
export function rawUpgrade(target: Target, timeoutMs = 30_000): Promise<{ socket: Socket; setSink: (sink: ByteSink) => void }> {
  return new Promise((resolve, reject) => {
    let received: Buffer = Buffer.alloc(0);
    let upgraded = false;
    let sink: ByteSink | null = null;
    /** Bytes after the 101 read before `sink` was set (copies). */
    let pending: Buffer[] = [];
    const fail = (error: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    const onHandshakeBytes = (nread: number) => {
      const chunk = Buffer.from(READ_BUFFER.subarray(0, nread));
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      const end = received.indexOf(HEADER_END);
      if (end === -1) return;
      socket.off('error', fail);
      clearTimeout(timer);
      const status = Number(received.toString('latin1', 9, 12));
      if (status !== 101) {
        socket.destroy();
        const retryAfter = /\r\nRetry-After: *(\d+)/i.exec(received.toString('latin1', 0, end));
        reject(new Error(`handshake on ${target.path} answered HTTP ${status}${retryAfter ? ` (Retry-After: ${retryAfter[1]})` : ''}`));
        return;
      }
      upgraded = true;
      const head = received.subarray(end + HEADER_END.length);
      if (head.length > 0) pending.push(head);
      socket.setNoDelay(true);
      resolve({
        socket,
        setSink: (next) => {
          sink = next;
          for (const bytes of pending) next(bytes, bytes.length);
          pending = [];
        },
      });
    };
    const socket = connect({
      host: target.host,
      port: target.port,
      localAddress: target.localAddress,
      localPort: target.localPort,
      onread: {
        buffer: READ_BUFFER,
        callback: (nread: number) => {
          if (!upgraded) onHandshakeBytes(nread);
          else if (sink !== null) sink(READ_BUFFER, nread);
          else pending.push(Buffer.from(READ_BUFFER.subarray(0, nread)));
          return true;
        },
      },
    });
    const timer = setTimeout(() => fail(new Error(`handshake timed out after ${timeoutMs} ms`)), timeoutMs);
    socket.on('error', fail);
    socket.on('connect', () =>
      socket.write(
        `GET ${target.path} HTTP/1.1\r\nHost: ${target.host}:${target.port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
      ),
    );
  });
}
