import { describe, expect, it } from 'vitest';
import { AuthError } from 'nestjs-riverside';

// Reference A9; SPEC 3.3. What reaches the client is asserted in test/e2e/handshake.e2e-spec.ts
// and test/e2e/auth.e2e-spec.ts; this spec covers the builder's rules.

describe('AuthError', () => {
  describe('constructor', () => {
    it('defaults to 401 with no headers', () => {
      const error = new AuthError();
      expect(error.status).toBe(401);
      expect(error.headers).toEqual({});
    });

    it('is an Error named AuthError whose message names the status', () => {
      const error = new AuthError(403);
      expect(error).toBeInstanceOf(Error);
      expect(error.name).toBe('AuthError');
      expect(error.message).toBe('Handshake refused with HTTP 403');
    });

    it.each([400, 404, 418, 429, 500, 503, 511])('takes the known error status %i', (status) => {
      expect(new AuthError(status).status).toBe(status);
    });

    it.each([
      ['a success status', 200],
      ['a redirect', 302],
      ['the 101 of an upgrade', 101],
      ['a status above 599', 600],
      ['an unassigned 4xx status', 499],
      ['a fraction', 401.5],
      ['NaN', Number.NaN],
    ])('rejects %s with a RangeError naming the value', (_what, status) => {
      expect(() => new AuthError(status)).toThrow(RangeError);
      expect(() => new AuthError(status)).toThrow(`AuthError takes a known HTTP error status (400-599), got ${status}`);
    });
  });

  describe('unauthorized', () => {
    it('is a 401', () => {
      expect(AuthError.unauthorized().status).toBe(401);
    });
  });

  describe('forbidden', () => {
    it('is a 403', () => {
      expect(AuthError.forbidden().status).toBe(403);
    });
  });

  describe('withHeader', () => {
    it('adds the header under the name as given and returns the same error for chaining', () => {
      const error = new AuthError(429);
      expect(error.withHeader('Retry-After', '30')).toBe(error);
      expect(error.headers).toEqual({ 'Retry-After': '30' });
    });

    it('refuses the headers that frame the response, which Riverside writes itself', () => {
      for (const name of ['Content-Length', 'content-type', 'Connection', 'Transfer-Encoding']) {
        expect(() => AuthError.unauthorized().withHeader(name, '0')).toThrow(
          `HTTP header ${name} is set by Riverside itself for a refused handshake`,
        );
      }
    });

    it('exposes the headers read-only, so they cannot bypass validation', () => {
      const error = AuthError.unauthorized().withHeader('X-One', '1');
      expect(() => {
        (error.headers as Record<string, string>)['X-Injected'] = 'a\r\nb';
      }).toThrow(TypeError);
      expect(error.headers).toEqual({ 'X-One': '1' });
    });

    it('keeps headers of different names', () => {
      const error = AuthError.unauthorized().withHeader('X-One', '1').withHeader('X-Two', '2');
      expect(error.headers).toEqual({ 'X-One': '1', 'X-Two': '2' });
    });

    it('replaces an earlier header of the same name in any case (Riverside would send both)', () => {
      const error = AuthError.unauthorized().withHeader('WWW-Authenticate', 'Basic realm="a"').withHeader('www-authenticate', 'Basic realm="b"');
      expect(error.headers).toEqual({ 'www-authenticate': 'Basic realm="b"' });
    });

    it('accepts tab, visible ASCII and Latin-1 characters in the value', () => {
      expect(AuthError.unauthorized().withHeader('X-Note', 'a\tb ~ caf\u00e9').headers['X-Note']).toBe('a\tb ~ caf\u00e9');
    });

    it.each([
      ['CR LF (header injection)', 'x\r\nSet-Cookie: admin=1'],
      ['a bare LF', 'x\nSet-Cookie: admin=1'],
      ['a bare CR', 'x\ry'],
      ['NUL', 'x\0y'],
      ['another control character', 'x\u0001y'],
      ['DEL', 'x\u007fy'],
      ['a character beyond Latin-1', '\u20ac'],
    ])('rejects a value containing %s with a TypeError', (_what, value) => {
      expect(() => AuthError.unauthorized().withHeader('X-Note', value)).toThrow(TypeError);
    });

    it.each([
      ['empty', ''],
      ['with a space', 'X Note'],
      ['with a colon', 'X-Note:'],
      ['with CR LF', 'X-Note\r\nSet-Cookie'],
      ['non-ASCII', 'X-Nöte'],
    ])('rejects a name that is %s with a TypeError naming it', (_what, name) => {
      expect(() => AuthError.unauthorized().withHeader(name, 'v')).toThrow(`Invalid HTTP header name: ${JSON.stringify(name)}`);
    });

    it('leaves the headers unchanged when it rejects', () => {
      const error = AuthError.unauthorized().withHeader('X-Note', 'kept');
      expect(() => error.withHeader('X-Note', 'bad\r\nvalue')).toThrow(TypeError);
      expect(error.headers).toEqual({ 'X-Note': 'kept' });
    });
  });

  describe('withBasicRealm', () => {
    it('sets WWW-Authenticate: Basic realm="<realm>"', () => {
      expect(AuthError.unauthorized().withBasicRealm('example.org').headers).toEqual({
        'WWW-Authenticate': 'Basic realm="example.org"',
      });
    });

    it('escapes a quote and a backslash in the realm as an RFC 7230 quoted-string', () => {
      expect(AuthError.unauthorized().withBasicRealm('say "hi" \\o/').headers['WWW-Authenticate']).toBe(
        'Basic realm="say \\"hi\\" \\\\o/"',
      );
    });

    it('rejects a realm with CR LF', () => {
      expect(() => AuthError.unauthorized().withBasicRealm('a"\r\nSet-Cookie: x=1')).toThrow(TypeError);
    });
  });

  describe('withBearerRealm', () => {
    it('sets WWW-Authenticate: Bearer realm="<realm>" without an error', () => {
      expect(AuthError.unauthorized().withBearerRealm('example.org').headers).toEqual({
        'WWW-Authenticate': 'Bearer realm="example.org"',
      });
    });

    it('adds error="<error>" after a comma, as RFC 6750 and Riverside\'s README write it', () => {
      expect(AuthError.unauthorized().withBearerRealm('example.org', 'invalid_token').headers['WWW-Authenticate']).toBe(
        'Bearer realm="example.org", error="invalid_token"',
      );
    });

    it('replaces an earlier Basic challenge (one WWW-Authenticate header)', () => {
      const error = AuthError.unauthorized().withBasicRealm('example.org').withBearerRealm('example.org');
      expect(error.headers).toEqual({ 'WWW-Authenticate': 'Bearer realm="example.org"' });
    });
  });
});
