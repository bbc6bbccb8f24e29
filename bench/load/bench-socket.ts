import type { Socket } from 'node:net';
import { clientFrame, FrameReader, OP_CLOSE, OP_PING, pongFrame, rawUpgrade, upgrade } from './wire.js';

/**
 * What goes over the wire differs per contender: raw frames (raw ws, Riverside), Nest's
 * `{ event, data }` envelope, or Socket.IO's packets on Engine.IO (`transport=websocket`, as
 * `socket.io-client` with `transports: ['websocket']` does it).
 */
export type Protocol = 'ws' | 'nest-ws' | 'socket.io';

export function requestText(protocol: Protocol, payload: string): string {
  switch (protocol) {
    case 'ws':
      return payload;
    case 'nest-ws':
      return `{"event":"echo","data":${payload}}`;
    case 'socket.io':
      return `42["echo",${payload}]`;
  }
}

/** What an echo server sends back for `requestText(protocol, payload)`. */
export const responseText = requestText;

function pathFor(protocol: Protocol, path: string, user: string, role: string): string {
  const query = `user=${encodeURIComponent(user)}&role=${role}`;
  return protocol === 'socket.io' ? `/socket.io/?EIO=4&transport=websocket&${query}` : `${path}?${query}`;
}

const SIO_PONG = clientFrame('3');
const SIO_CONNECT = clientFrame('40');
const CHAR_2 = 0x32;

export interface ConnectOptions {
  protocol: Protocol;
  host: string;
  port: number;
  /** Handler path for 'ws' and 'nest-ws'. */
  path: string;
  user: string;
  /** 'member' joins the fan-out channel / room; 'idle' and 'echo' do not. */
  role: string;
  localAddress?: string;
  /** Source port (with `localAddress`, `rawHandshake` only): see `Target.localPort`. */
  localPort?: number;
  /** Upgrade on a bare TCP socket (`rawUpgrade`, reading into a shared buffer) rather than through node:http; not for Socket.IO. */
  rawHandshake?: boolean;
}

/** One client connection of a load generator. */
export class BenchSocket {
  readonly reader: FrameReader;
  /** While true, data frames' payloads are read (for handshakes and checks); counting only otherwise. */
  collect = true;
  /** Called after every chunk read, with the reader's count already updated. */
  onData: (() => void) | null = null;
  /**
   * With `collect` on, receives each data frame's payload instead of counting it (bench:scale reads
   * timestamps). The payload may be a view of a reused read buffer: valid during the call only.
   */
  onText: ((payload: Buffer) => void) | null = null;
  closeCode = 0;
  private waiting: ((text: string) => void) | null = null;

  private constructor(
    readonly socket: Socket,
    readonly protocol: Protocol,
  ) {
    this.reader = new FrameReader(
      (opcode, length) => this.collect || opcode >= OP_CLOSE || (protocol === 'socket.io' && length === 1),
      (opcode, payload) => this.frame(opcode, payload),
    );
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.closeCode === 0) this.closeCode = 1006;
    });
  }

  /** Reads the socket's 'data' events. */
  private listen(): void {
    this.socket.on('data', (chunk: Buffer) => this.read(chunk, chunk.length));
  }

  private read(bytes: Buffer, end: number): void {
    this.reader.push(bytes, end);
    this.onData?.();
  }

  static async connect(options: ConnectOptions): Promise<BenchSocket> {
    const target = {
      host: options.host,
      port: options.port,
      path: pathFor(options.protocol, options.path, options.user, options.role),
      localAddress: options.localAddress,
      localPort: options.localPort,
    };
    let client: BenchSocket;
    if (options.rawHandshake) {
      if (options.protocol === 'socket.io') throw new Error('rawHandshake does not speak Socket.IO');
      // Reads into the process' shared buffer, no 'data' events (see rawUpgrade).
      const { socket, setSink } = await rawUpgrade(target);
      client = new BenchSocket(socket, options.protocol);
      setSink((bytes, end) => client.read(bytes, end));
    } else {
      const { socket, head } = await upgrade(target);
      client = new BenchSocket(socket, options.protocol);
      client.listen();
      if (options.protocol === 'socket.io') {
        const opened = client.nextText();
        if (head.length > 0) client.reader.push(head);
        const open = await opened;
        if (!open.startsWith('0{')) throw new Error(`expected an Engine.IO open packet, got ${open.slice(0, 40)}`);
        const connected = client.nextText();
        socket.write(SIO_CONNECT);
        const ack = await connected;
        if (!ack.startsWith('40')) throw new Error(`expected a Socket.IO CONNECT packet, got ${ack.slice(0, 40)}`);
      } else if (head.length > 0) {
        client.reader.push(head);
      }
    }
    client.collect = false;
    return client;
  }

  /** The payload of the next data frame (sets `collect`). */
  nextText(timeoutMs = 10_000): Promise<string> {
    this.collect = true;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = null;
        reject(new Error(`no message within ${timeoutMs} ms (close code ${this.closeCode || 'none'})`));
      }, timeoutMs);
      this.waiting = (text) => {
        clearTimeout(timer);
        resolve(text);
      };
    });
  }

  get isOpen(): boolean {
    return this.closeCode === 0;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private frame(opcode: number, payload: Buffer): void {
    if (opcode === OP_PING) {
      this.socket.write(pongFrame(payload));
      return;
    }
    if (opcode === OP_CLOSE) {
      this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      this.socket.end();
      return;
    }
    if (opcode > OP_CLOSE) return;
    // Engine.IO's heartbeat: the server pings with "2" every pingInterval and wants "3" back.
    if (this.protocol === 'socket.io' && payload.length === 1 && payload[0] === CHAR_2) {
      this.socket.write(SIO_PONG);
      return;
    }
    const waiting = this.waiting;
    if (waiting !== null) {
      this.waiting = null;
      waiting(payload.toString());
      return;
    }
    this.reader.count++;
    this.onText?.(payload);
  }
}
