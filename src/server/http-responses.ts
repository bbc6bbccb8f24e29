import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

/** The 'error' listener of a socket handed over by an 'upgrade' event that nothing else owns yet. */
export function destroyOnError(this: Duplex): void {
  this.destroy();
}

/**
 * Answers an upgrade request with an HTTP error and closes the socket. The body is the
 * status text only: never an internal detail.
 */
export function rejectUpgrade(socket: Duplex, status: number, headers: Readonly<Record<string, string>> = {}): void {
  // Node removes its own 'error' listener before 'upgrade': a reset while the answer is written
  // must only destroy the socket, not reach the process as an unhandled 'error'.
  if (socket.listenerCount('error') === 0) socket.on('error', destroyOnError);
  if (!socket.writable || socket.destroyed) {
    socket.destroy();
    return;
  }
  const body = STATUS_CODES[status] ?? 'Error';
  let head = `HTTP/1.1 ${status} ${body}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
  for (const name of Object.keys(headers)) head += `${name}: ${headers[name]}\r\n`;
  // Header bytes are Latin-1, as Node's http writes them; the status text body is ASCII.
  socket.end(Buffer.from(`${head}\r\n${body}`, 'latin1'));
  // end() waits for the peer to close its side; a client that never does must not hold the socket.
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** A short plain-text answer of the standalone server. */
export function respond(
  res: ServerResponse,
  status: number,
  headers: Readonly<Record<string, string>> = {},
  body = STATUS_CODES[status] ?? '',
): void {
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}

/** The path and query of a request target, without parsing anything else. */
export function splitTarget(req: IncomingMessage): { path: string; query: string } {
  const target = req.url ?? '/';
  const question = target.indexOf('?');
  const rawPath = question === -1 ? target : target.slice(0, question);
  // An absolute-form target (GET http://host/path) keeps only its path.
  const path = rawPath.startsWith('/') ? rawPath : rawPath.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '') || '/';
  return { path: path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path, query: question === -1 ? '' : target.slice(question + 1) };
}
