import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { WebSocket, type ClientOptions } from 'ws';
import { type Codec, INVALID_MESSAGE } from '../codec/codec.interface.js';
import { JsonCodec } from '../codec/json.codec.js';

/**
 * How `TestClient.connect()` and `TestClient.expectRefused()` open the connection: query,
 * headers, credentials, subprotocols and the codec used to read and write messages.
 * @publicApi
 */
export interface TestClientOptions {
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** Query parameters appended to the URL. */
  query?: Record<string, string | number | boolean>;
  /** Sent as `Authorization: Basic ...`. */
  basic?: { username: string; password: string };
  /** Sent as `Authorization: Bearer ...`. */
  bearer?: string;
  /** Offered in `Sec-WebSocket-Protocol`. */
  subprotocols?: string[];
  /** Codec used by `send()` and `expectMessage()`. @default JsonCodec */
  codec?: Codec;
  /** Default timeout of the `expect*` helpers and of the handshake, in ms. @default 2000 */
  timeout?: number;
  /** Options passed to the `ws` client (TLS options such as `rejectUnauthorized`, `localAddress`...). */
  ws?: ClientOptions;
}

/** A frame as the client received it. @publicApi */
export interface ReceivedFrame {
  readonly data: Buffer;
  readonly isBinary: boolean;
}

/** The close the client observed. @publicApi */
export interface ObservedClose {
  readonly code: number;
  readonly reason: string;
}

/**
 * The handshake was answered with an HTTP status instead of 101.
 * @publicApi
 */
export class HandshakeRefusedError extends Error {
  constructor(
    readonly status: number,
    readonly headers: IncomingHttpHeaders,
    readonly body: string,
  ) {
    super(`Handshake refused with HTTP ${status}`);
    this.name = 'HandshakeRefusedError';
  }
}

type Waiter<T> = { resolve: (value: T) => void; reject: (error: Error) => void; timer: NodeJS.Timeout };

function buildUrl(url: string, options: TestClientOptions): string {
  if (!options.query) return url;
  const target = new URL(url);
  for (const [name, value] of Object.entries(options.query)) target.searchParams.set(name, String(value));
  return target.toString();
}

function buildHeaders(options: TestClientOptions): Record<string, string> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.basic) {
    const token = Buffer.from(`${options.basic.username}:${options.basic.password}`).toString('base64');
    headers.authorization = `Basic ${token}`;
  }
  if (options.bearer !== undefined) headers.authorization = `Bearer ${options.bearer}`;
  return headers;
}

/**
 * A WebSocket client for end-to-end tests of Riverside handlers (or any WebSocket server):
 * it records every frame and the close, and waits for them with timeouts.
 *
 * ```ts
 * const client = await TestClient.connect(server.url('/chat'), { bearer: 'token' });
 * client.send({ say: 'hi' });
 * expect(await client.expectMessage()).toEqual({ echo: 'hi' });
 * expect(await client.expectClose()).toEqual({ code: 1000, reason: '' });
 * ```
 * @publicApi
 */
export class TestClient {
  private readonly frames: ReceivedFrame[] = [];
  private readonly frameWaiters: Waiter<ReceivedFrame>[] = [];
  private closed: ObservedClose | null = null;
  private readonly closeWaiters: Waiter<ObservedClose>[] = [];
  private readonly codec: Codec;
  private readonly timeout: number;

  private constructor(
    /** The underlying `ws` client. */
    readonly ws: WebSocket,
    options: TestClientOptions,
  ) {
    this.codec = options.codec ?? new JsonCodec();
    this.timeout = options.timeout ?? 2000;
    ws.on('message', (data: Buffer, isBinary: boolean) => this.push({ data, isBinary }));
    ws.on('close', (code: number, reason: Buffer) => this.onClose({ code, reason: reason.toString() }));
    ws.on('error', () => {
      // The close that follows carries what a test asserts on.
    });
  }

  /** Opens a connection; rejects with {@link HandshakeRefusedError} when the server refuses it. */
  static connect(url: string, options: TestClientOptions = {}): Promise<TestClient> {
    const ws = new WebSocket(buildUrl(url, options), options.subprotocols ?? [], {
      headers: buildHeaders(options),
      handshakeTimeout: options.timeout ?? 2000,
      ...options.ws,
    });
    return new Promise((resolve, reject) => {
      const client = new TestClient(ws, options);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res: IncomingMessage) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          reject(new HandshakeRefusedError(res.statusCode ?? 0, res.headers, body));
          ws.terminate();
        });
      });
      ws.once('error', (error) => reject(error));
    });
  }

  /** Connects expecting a refusal; resolves with the HTTP status, headers and body. */
  static async expectRefused(url: string, options: TestClientOptions = {}): Promise<HandshakeRefusedError> {
    try {
      const client = await TestClient.connect(url, options);
      client.ws.terminate();
    } catch (error) {
      if (error instanceof HandshakeRefusedError) return error;
      throw error;
    }
    throw new Error(`Expected the handshake to ${url} to be refused, but it was accepted`);
  }

  /** The subprotocol the server selected ('' for none). */
  get protocol(): string {
    return this.ws.protocol;
  }

  /** Encodes with the client's codec and sends. */
  send(message: unknown): void {
    const data = this.codec.encode(message);
    this.ws.send(data, { binary: this.codec.frameType === 'binary' });
  }

  /** Sends a raw text (string) or binary (Buffer) frame. */
  sendRaw(data: string | Buffer, binary = typeof data !== 'string'): void {
    this.ws.send(data, { binary });
  }

  /** The next frame, decoded with the client's codec. */
  async expectMessage(timeout = this.timeout): Promise<unknown> {
    const frame = await this.expectFrame(timeout);
    const decoded = this.codec.decode(frame.data);
    if (decoded === INVALID_MESSAGE) {
      throw new Error(`Received a frame the client's codec cannot decode: ${frame.data.toString().slice(0, 200)}`);
    }
    return decoded;
  }

  /** The next n messages, decoded, in arrival order. */
  async expectMessages(count: number, timeout = this.timeout): Promise<unknown[]> {
    const messages: unknown[] = [];
    for (let i = 0; i < count; i++) messages.push(await this.expectMessage(timeout));
    return messages;
  }

  /** The next frame as it arrived. */
  expectFrame(timeout = this.timeout): Promise<ReceivedFrame> {
    const next = this.frames.shift();
    if (next) return Promise.resolve(next);
    if (this.closed) {
      return Promise.reject(new Error(`Expected a frame, but the connection closed with ${this.closed.code}`));
    }
    return this.wait(this.frameWaiters, timeout, 'a frame');
  }

  /** Resolves when no frame arrives within `ms` (or the connection closes); rejects with the frame otherwise. */
  async expectNoMessage(ms = 200): Promise<void> {
    let frame: ReceivedFrame;
    try {
      frame = await this.expectFrame(ms);
    } catch {
      return;
    }
    const shown = frame.isBinary ? `a binary frame of ${frame.data.length} bytes` : JSON.stringify(frame.data.toString().slice(0, 200));
    throw new Error(`Expected no message, got ${shown}`);
  }

  /** Waits for the close; with `code`, rejects when another code arrives. */
  async expectClose(code?: number, timeout = this.timeout): Promise<ObservedClose> {
    const observed = this.closed ?? (await this.wait(this.closeWaiters, timeout, 'the close'));
    if (code !== undefined && observed.code !== code) {
      throw new Error(`Expected close code ${code}, got ${observed.code} (${JSON.stringify(observed.reason)})`);
    }
    return observed;
  }

  /** Sends a close frame and waits for the server's answer. */
  async close(code?: number, reason?: string): Promise<ObservedClose> {
    if (!this.closed) this.ws.close(code, reason);
    return this.expectClose();
  }

  private push(frame: ReceivedFrame): void {
    const waiter = this.frameWaiters.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      waiter.resolve(frame);
    } else {
      this.frames.push(frame);
    }
  }

  private onClose(observed: ObservedClose): void {
    this.closed = observed;
    for (const waiter of this.closeWaiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.resolve(observed);
    }
    for (const waiter of this.frameWaiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error(`Expected a frame, but the connection closed with ${observed.code}`));
    }
  }

  private wait<T>(waiters: Waiter<T>[], timeout: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = {
        resolve,
        reject,
        timer: setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new TimeoutError(`Timed out after ${timeout} ms waiting for ${what}`));
        }, timeout),
      };
      waiters.push(waiter);
    });
  }
}

class TimeoutError extends Error {}
