import { STATUS_CODES } from 'node:http';

/**
 * Thrown from `@OnAuthenticate` to refuse a handshake: the client gets this HTTP status and
 * these headers, and no upgrade. Any other exception from `@OnAuthenticate` becomes a 500.
 *
 * ```ts
 * throw AuthError.unauthorized().withBasicRealm('example.org');
 * throw new AuthError(403);
 * ```
 * @publicApi
 */
export class AuthError extends Error {
  private readonly responseHeaders: Record<string, string> = {};

  constructor(readonly status = 401) {
    super(`Handshake refused with HTTP ${status}`);
    this.name = 'AuthError';
    if (!Number.isInteger(status) || status < 400 || status > 599 || !STATUS_CODES[status]) {
      throw new RangeError(`AuthError takes a known HTTP error status (400-599), got ${status}`);
    }
  }

  /** The headers of the refusal, as set through the `with*` helpers (which validate them). */
  get headers(): Readonly<Record<string, string>> {
    return Object.freeze({ ...this.responseHeaders });
  }

  /** 401 Unauthorized. */
  static unauthorized(): AuthError {
    return new AuthError(401);
  }

  /** 403 Forbidden. */
  static forbidden(): AuthError {
    return new AuthError(403);
  }

  /** Adds a response header; a later call with the same name (any case) replaces it. */
  withHeader(name: string, value: string): this {
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) throw new TypeError(`Invalid HTTP header name: ${JSON.stringify(name)}`);
    if (FRAMING_HEADERS.has(name.toLowerCase())) {
      throw new TypeError(`HTTP header ${name} is set by Riverside itself for a refused handshake`);
    }
    // Node's own rule for header values (validateHeaderValue): CR/LF would inject headers, and
    // any other control character makes clients reject the whole response.
    if (/[^\t\x20-\x7e\x80-\xff]/.test(value)) {
      throw new TypeError(`HTTP header ${name} must hold only tab, visible ASCII, space or Latin-1 characters (no CR, LF or other controls)`);
    }
    for (const existing of Object.keys(this.responseHeaders)) {
      if (existing.toLowerCase() === name.toLowerCase()) delete this.responseHeaders[existing];
    }
    this.responseHeaders[name] = value;
    return this;
  }

  /** `WWW-Authenticate: Basic realm="<realm>"`. */
  withBasicRealm(realm: string): this {
    return this.withHeader('WWW-Authenticate', `Basic realm="${quote(realm)}"`);
  }

  /**
   * `WWW-Authenticate: Bearer realm="<realm>", error="<error>"` (RFC 6750, with the comma that
   * Riverside leaves out).
   */
  withBearerRealm(realm: string, error?: string): this {
    const challenge = `Bearer realm="${quote(realm)}"` + (error === undefined ? '' : `, error="${quote(error)}"`);
    return this.withHeader('WWW-Authenticate', challenge);
  }
}

/** Headers that frame the refusal response; a second copy would make it unparsable. */
const FRAMING_HEADERS: ReadonlySet<string> = new Set(['content-length', 'content-type', 'connection', 'transfer-encoding']);

function quote(value: string): string {
  return value.replace(/["\\]/g, '\\$&');
}
