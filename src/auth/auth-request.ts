import type { IncomingMessage } from 'node:http';
import { type ForwardedForReader, leftMostForwardedFor, unmapIPv4 } from './forwarded-for.js';

/**
 * Where a handshake comes from.
 * @publicApi
 */
export interface PeerAddress {
  /** The address of the socket's peer (a proxy, when there is one). */
  readonly address: string;
  readonly port: number;
  /**
   * The client's address as the `X-Forwarded-For` header tells it, or ''. Without the
   * `trustProxy` option it is the left-most entry, which the client controls (it can send any
   * header): use it for logs, never for access control. With `trustProxy` it is the right-most
   * address that is not a trusted proxy (Express's `req.ip`): `address` itself when the peer is
   * not a trusted proxy, '' when that entry is not an IP address.
   */
  readonly forwardedFor: string;
}

/**
 * The user name and password of an `Authorization: Basic` header (`AuthRequest.basic`); both
 * are empty strings when the header is absent or malformed.
 * @publicApi
 */
export interface BasicCredentials {
  readonly username: string;
  readonly password: string;
}

const EMPTY_BASIC: BasicCredentials = Object.freeze({ username: '', password: '' });
const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The handshake request as `@OnAuthenticate` sees it, before any upgrade.
 * @publicApi
 */
export class AuthRequest {
  /** The request path, without the query string. */
  readonly path: string;
  /**
   * Query parameters, percent-decoded (`+` is a space). A name without `=` is `true`; for a
   * repeated name the last value wins.
   */
  readonly queries: Readonly<Record<string, string | true>>;
  /** The subprotocols the client offered in `Sec-WebSocket-Protocol`, in its order. */
  readonly subprotocols: readonly string[];
  readonly peer: PeerAddress;
  private headersCache: Readonly<Record<string, string>> | undefined;
  private basicCache: BasicCredentials | undefined;
  private cookiesCache: Readonly<Record<string, string>> | undefined;

  /** @internal Built by the handshake; throws a `MalformedRequestError` on an unreadable query string. */
  constructor(
    /** The raw Node request, for anything not covered above. */
    readonly raw: IncomingMessage,
    path: string,
    query: string,
    subprotocols: readonly string[],
    readForwardedFor: ForwardedForReader = leftMostForwardedFor,
  ) {
    this.path = path;
    this.queries = parseQuery(query);
    this.subprotocols = subprotocols;
    this.peer = readPeer(raw, headerText(raw, 'x-forwarded-for'), readForwardedFor);
  }

  /**
   * Request headers with lower-cased names; repeated headers joined by ', ' (cookies by '; ').
   * Built when first read: most handshakes only need the query.
   */
  get headers(): Readonly<Record<string, string>> {
    return (this.headersCache ??= flattenHeaders(this.raw));
  }

  /**
   * Credentials of an `Authorization: Basic` header; empty strings when absent or malformed.
   * The password may contain ':' (only the first ':' separates).
   */
  get basic(): BasicCredentials {
    return (this.basicCache ??= parseBasic(this.headers.authorization));
  }

  /** The token of an `Authorization: Bearer <token>` header, or '' when absent or malformed. */
  get bearerToken(): string {
    const [scheme, token] = splitAuthorization(this.headers.authorization);
    return scheme === 'bearer' ? token : '';
  }

  /**
   * What an HTTP guard on `@OnAuthenticate` set as `req.user` (passport's `AuthGuard` does),
   * or undefined.
   */
  get user(): unknown {
    return (this.raw as IncomingMessage & { user?: unknown }).user;
  }

  /** Cookies of the `Cookie` header, values percent-decoded; the first of a repeated name wins. */
  get cookies(): Readonly<Record<string, string>> {
    return (this.cookiesCache ??= parseCookies(this.headers.cookie));
  }
}

/** A handshake the server cannot read: answered with HTTP 400. */
export class MalformedRequestError extends Error {}

/** `%` and `+`: a component with neither decodes to itself. */
const ENCODED = /[%+]/;

function decodeQueryComponent(text: string): string {
  if (!ENCODED.test(text)) return text;
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    throw new MalformedRequestError(`malformed percent-encoding in query: ${text.slice(0, 64)}`);
  }
}

function parseQuery(query: string): Record<string, string | true> {
  const result: Record<string, string | true> = Object.create(null);
  if (query === '') return result;
  // Decided once for the whole query: most carry no escapes, and then no component is decoded.
  const decode = ENCODED.test(query) ? decodeQueryComponent : identity;
  // Walked in place, without an array of pairs or a slice per pair.
  for (let start = 0; start <= query.length; ) {
    let end = query.indexOf('&', start);
    if (end === -1) end = query.length;
    if (end > start) {
      const equals = query.indexOf('=', start);
      if (equals === start) throw new MalformedRequestError('query parameter without a name');
      if (equals === -1 || equals > end) result[decode(query.slice(start, end))] = true;
      else result[decode(query.slice(start, equals))] = decode(query.slice(equals + 1, end));
    }
    start = end + 1;
  }
  return result;
}

function identity(text: string): string {
  return text;
}

/** One header as flattenHeaders() gives it, without flattening them all. */
function headerText(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function flattenHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = Object.create(null);
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    headers[name] = Array.isArray(value) ? value.join(name === 'cookie' ? '; ' : ', ') : value;
  }
  return headers;
}

function readPeer(req: IncomingMessage, forwardedFor: string | undefined, readForwardedFor: ForwardedForReader): PeerAddress {
  const socket = req.socket as IncomingMessage['socket'] & { _peername?: unknown };
  // An IPv4 client of a dual-stack server shows up as ::ffff:a.b.c.d.
  const address = unmapIPv4(socket.remoteAddress ?? '');
  const port = socket.remotePort ?? 0;
  // Node caches the address it read (an object and a string) on the socket for the socket's
  // whole life; the session keeps its own PeerAddress. Read again, it is asked of the OS.
  if (socket._peername !== undefined) socket._peername = undefined;
  return Object.freeze({ address, port, forwardedFor: readForwardedFor(address, forwardedFor) });
}

function splitAuthorization(header: string | undefined): [scheme: string, credentials: string] {
  if (!header) return ['', ''];
  const match = /^([A-Za-z]+) +(\S+)$/.exec(header.trim());
  return match ? [match[1].toLowerCase(), match[2]] : ['', ''];
}

function parseBasic(header: string | undefined): BasicCredentials {
  const [scheme, encoded] = splitAuthorization(header);
  if (scheme !== 'basic' || !STRICT_BASE64.test(encoded)) return EMPTY_BASIC;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return EMPTY_BASIC;
  return Object.freeze({ username: decoded.slice(0, colon), password: decoded.slice(colon + 1) });
}

function parseCookies(header: string | undefined): Record<string, string> {
  const cookies: Record<string, string> = Object.create(null);
  if (!header) return cookies;
  for (const part of header.split(';')) {
    const equals = part.indexOf('=');
    if (equals <= 0) continue;
    const name = part.slice(0, equals).trim();
    if (name === '' || name in cookies) continue;
    let value = part.slice(equals + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    try {
      cookies[name] = decodeURIComponent(value);
    } catch {
      cookies[name] = value;
    }
  }
  return cookies;
}
