import { HttpException } from '@nestjs/common';
import { type IncomingMessage, STATUS_CODES } from 'node:http';
import { parse as parseQueryString } from 'node:querystring';
import { AuthError } from '../auth/auth-error.js';
import type { AuthRequest } from '../auth/auth-request.js';

/**
 * What `switchToHttp().getResponse()` is at the handshake: enough of Node's and Express's
 * response API for passport-style guards (`setHeader`, `header`, `status`...), writing nothing
 * to the socket. Headers set on it are sent with a refusal (e.g. `WWW-Authenticate`,
 * `Retry-After`); a 101 carries only what the WebSocket handshake needs.
 * @publicApi
 */
export class HandshakeResponse {
  statusCode = 200;
  readonly headersSent = false;
  private readonly headers = new Map<string, [name: string, value: string]>();

  setHeader(name: string, value: string | number | readonly string[]): this {
    this.headers.set(name.toLowerCase(), [name, Array.isArray(value) ? value.join(', ') : String(value)]);
    return this;
  }

  /** Express's `res.header(name, value)`. */
  header(name: string, value: string | number | readonly string[]): this {
    return this.setHeader(name, value);
  }

  /** Express's `res.set(name, value)`. */
  set(name: string, value: string | number | readonly string[]): this {
    return this.setHeader(name, value);
  }

  getHeader(name: string): string | undefined {
    return this.headers.get(name.toLowerCase())?.[1];
  }

  removeHeader(name: string): void {
    this.headers.delete(name.toLowerCase());
  }

  status(code: number): this {
    this.statusCode = code;
    return this;
  }

  /** Writes nothing: the outcome of the handshake is the guard's return value or exception. */
  end(): this {
    return this;
  }

  /** @internal The headers set, for a refusal. */
  entries(): [name: string, value: string][] {
    return [...this.headers.values()];
  }
}

/** The upgrade request as an HTTP guard sees it: Node's request plus Express's `query`. */
type GuardRequest = IncomingMessage & { query?: unknown; ip?: string; user?: unknown };

/**
 * Runs the `@OnAuthenticate` method's guards on the upgrade request. A refusal becomes an
 * `AuthError` (handled as if `@OnAuthenticate` threw it): false -> 403, an `HttpException` ->
 * its status, with the headers the guard set on the response. Anything else propagates (500).
 */
export async function runHandshakeGuards(
  guards: (request: unknown, response: unknown) => Promise<void>,
  request: AuthRequest,
): Promise<void> {
  const raw = request.raw as GuardRequest;
  // Express 5's default ("simple") query parser, so that guards written for Express read the same.
  if (raw.query === undefined) {
    const url = raw.url ?? '';
    const question = url.indexOf('?');
    raw.query = question === -1 ? {} : { ...parseQueryString(url.slice(question + 1)) };
  }
  // Express's req.ip (the socket's address: Riverside does not read proxy headers for it).
  raw.ip ??= request.peer.address;
  const response = new HandshakeResponse();
  try {
    await guards(raw, response);
  } catch (error) {
    if (!(error instanceof HttpException)) throw error;
    const status = error.getStatus();
    const refusal = new AuthError(STATUS_CODES[status] !== undefined && status >= 400 && status <= 599 ? status : 500);
    for (const [name, value] of response.entries()) {
      try {
        refusal.withHeader(name, value);
      } catch {
        // A header a guard set that cannot go on the wire (or that Riverside sets) is left out.
      }
    }
    throw refusal;
  }
}
