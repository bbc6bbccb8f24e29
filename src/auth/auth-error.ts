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
  readonly headers: Record<string, string> = {};

  constructor(readonly status = 401) {
    super(`Handshake refused with HTTP ${status}`);
    this.name = 'AuthError';
    if (!Number.isInteger(status) || status < 400 || status > 599 || !STATUS_CODES[status]) {
      throw new RangeError(`AuthError takes a known HTTP error status (400-599), got ${status}`);
    }
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
    // Node's own rule for header values (validateHeaderValue): CR/LF would inject headers, and
    // any other control character makes clients reject the whole response.
    if (/[^\t\x20-\x7e\x80-\xff]/.test(value)) {
      throw new TypeError(`HTTP header ${name} must hold only tab, visible ASCII, space or Latin-1 characters (no CR, LF or other controls)`);
    }
    for (const existing of Object.keys(this.headers)) {
      if (existing.toLowerCase() === name.toLowerCase()) delete this.headers[existing];
    }
    this.headers[name] = value;
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

function quote(value: string): string {
  return value.replace(/["\\]/g, '\\$&');
}
