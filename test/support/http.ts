import { type IncomingHttpHeaders, request as httpRequest } from 'node:http';
import { connect as connectTcp } from 'node:net';
import { request as httpsRequest } from 'node:https';

/** What an HTTP(S) server answered: its status, headers and body as text. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/**
 * One HTTP(S) request with node:http(s) and no agent, so that a test can send what fetch() or a
 * WebSocket client never would; TLS requests trust `ca`. A 101 Switching Protocols answer
 * resolves with an empty body, its socket destroyed.
 */
export function fetchRaw(url: string, init: { method?: string; headers?: Record<string, string>; ca?: Buffer } = {}): Promise<HttpAnswer> {
  const target = new URL(url);
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(target, { method: init.method ?? 'GET', headers: init.headers, ...(init.ca && { ca: init.ca }), agent: false });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' });
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A response read off a raw TCP socket: its status line, lower-cased headers and body. */
export interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/**
 * Writes `request` as-is over TCP (what no HTTP client library would send: HTTP/1.0 upgrades, no
 * Host...) and reads the response until the server closes or `timeout` ms pass. A 101 resolves
 * as soon as its head arrived.
 */
export function rawHttp(port: number, request: string, timeout = 3000): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error(`no complete answer within ${timeout} ms: ${JSON.stringify(received.toString())}`)), timeout);
    const finish = (error?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (error) return reject(error);
      const text = received.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) return reject(new Error(`no response head: ${JSON.stringify(text)}`));
      const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: text.slice(end + 4) });
    };
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (/^HTTP\/1\.1 101 [^\r]*\r\n(?:[^\r]*\r\n)*\r\n/.test(received.toString('latin1'))) finish();
    });
    socket.on('end', () => finish());
    socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' && received.length > 0 ? finish() : finish(error)));
    socket.write(request);
  });
}
