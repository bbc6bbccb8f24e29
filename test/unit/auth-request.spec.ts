import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { AuthRequest, MalformedRequestError } from '../../src/auth/auth-request.js';

// Reference A8 (with SPEC 3.1's fixes); the same fields seen through a real handshake are
// asserted in test/e2e/handshake.e2e-spec.ts. Here: the parsing rules, edge by edge.

interface Incoming {
  query?: string;
  headers?: IncomingHttpHeaders;
  remoteAddress?: string;
  remotePort?: number;
}

/** An AuthRequest over a stand-in for the Node request (only headers and socket are read). */
function authRequest({ query = '', headers = {}, remoteAddress = '127.0.0.1', remotePort = 50_000 }: Incoming = {}) {
  const raw = { headers, socket: { remoteAddress, remotePort } } as unknown as IncomingMessage;
  return new AuthRequest(raw, '/', query, []);
}

function withAuthorization(value: string) {
  return authRequest({ headers: { authorization: value } });
}

function base64(text: string): string {
  return Buffer.from(text).toString('base64');
}

describe('AuthRequest', () => {
  describe('queries', () => {
    it('is empty for an empty query string', () => {
      expect({ ...authRequest().queries }).toEqual({});
    });

    it('percent-decodes names and values, reading + as a space', () => {
      expect({ ...authRequest({ query: 'full+name=J%C3%B6rg+M%C3%BCller&caf%C3%A9=%2B1' }).queries }).toEqual({
        'full name': 'Jörg Müller',
        café: '+1',
      });
    });

    it('maps a name without "=" to true', () => {
      expect(authRequest({ query: 'flag' }).queries.flag).toBe(true);
    });

    it('maps "name=" to the empty string', () => {
      expect(authRequest({ query: 'a=' }).queries.a).toBe('');
    });

    it('keeps everything after the first "=" in the value', () => {
      expect(authRequest({ query: 'token=a=b==' }).queries.token).toBe('a=b==');
    });

    it('skips empty pairs', () => {
      expect({ ...authRequest({ query: '&&a=1&&' }).queries }).toEqual({ a: '1' });
    });

    it('keeps the last value of a repeated name, also when a flag comes last', () => {
      expect(authRequest({ query: 'x=1&x=2' }).queries.x).toBe('2');
      expect(authRequest({ query: 'x=1&x' }).queries.x).toBe(true);
    });

    it('treats "__proto__" as an ordinary name', () => {
      const { queries } = authRequest({ query: '__proto__=x&constructor=y' });
      expect(Object.keys(queries)).toEqual(['__proto__', 'constructor']);
      expect(queries.__proto__).toBe('x');
    });

    it.each([
      ['a bad escape', 'a=%zz'],
      ['an incomplete escape', 'a=%E0%A4%A'],
      ['a truncated escape at the end', 'a=%4'],
      ['a bad escape in a name', '%zz=1'],
      ['an escape that is not UTF-8', 'a=%C3%28'],
      ['a pair without a name', '=b'],
    ])('throws a MalformedRequestError (HTTP 400) for %s', (_what, query) => {
      expect(() => authRequest({ query })).toThrow(MalformedRequestError);
    });
  });

  describe('headers', () => {
    it('has the request headers under lower-case names', () => {
      expect(authRequest({ headers: { 'x-request-id': 'r1', host: 'example.org' } }).headers).toEqual({
        'x-request-id': 'r1',
        host: 'example.org',
      });
    });

    it('joins a header Node delivers as a list with ", ", and cookies with "; "', () => {
      const { headers } = authRequest({ headers: { 'x-tag': ['a', 'b'] as unknown as string, cookie: ['a=1', 'b=2'] as unknown as string } });
      expect(headers['x-tag']).toBe('a, b');
      expect(headers.cookie).toBe('a=1; b=2');
    });
  });

  describe('basic', () => {
    it('decodes username and password', () => {
      expect(withAuthorization(`Basic ${base64('alice:secret')}`).basic).toEqual({ username: 'alice', password: 'secret' });
    });

    it('keeps every ":" after the first in the password (Riverside drops such credentials)', () => {
      expect(withAuthorization(`Basic ${base64('alice:a:b:c')}`).basic).toEqual({ username: 'alice', password: 'a:b:c' });
    });

    it('reads "user:" as an empty password and ":pw" as an empty username', () => {
      expect(withAuthorization(`Basic ${base64('user:')}`).basic).toEqual({ username: 'user', password: '' });
      expect(withAuthorization(`Basic ${base64(':pw')}`).basic).toEqual({ username: '', password: 'pw' });
    });

    it('decodes UTF-8 credentials', () => {
      expect(withAuthorization(`Basic ${base64('jörg:pässwörd')}`).basic).toEqual({ username: 'jörg', password: 'pässwörd' });
    });

    it('reads the scheme case-insensitively', () => {
      expect(withAuthorization(`BASIC ${base64('a:b')}`).basic).toEqual({ username: 'a', password: 'b' });
    });

    it.each([
      ['there is no Authorization header', undefined],
      ['the scheme is Bearer', 'Bearer xxxx'],
      ['the scheme has no credentials', 'Basic'],
      ['the credentials are not strict base64', 'Basic bad_token'],
      ['the base64 padding is missing', `Basic ${base64('a:bc').replace(/=+$/, '')}`],
      ['the decoded text has no ":"', `Basic ${base64('alice')}`],
      ['a third part follows', `Basic ${base64('a:b')} extra`],
    ])('is two empty strings when %s', (_what, header) => {
      const request = header === undefined ? authRequest() : withAuthorization(header);
      expect(request.basic).toEqual({ username: '', password: '' });
    });
  });

  describe('bearerToken', () => {
    it('is the token of "Bearer <token>", unvalidated', () => {
      expect(withAuthorization('Bearer abc.DEF-123_~+/=').bearerToken).toBe('abc.DEF-123_~+/=');
    });

    it('reads the scheme case-insensitively', () => {
      expect(withAuthorization('bearer t0k').bearerToken).toBe('t0k');
    });

    it.each([
      ['there is no Authorization header', undefined],
      ['the scheme is Basic', `Basic ${base64('a:b')}`],
      ['the scheme has no token', 'Bearer'],
      ['three parts are given', 'Bearer a b'],
    ])('is the empty string when %s', (_what, header) => {
      const request = header === undefined ? authRequest() : withAuthorization(header);
      expect(request.bearerToken).toBe('');
    });
  });

  describe('cookies', () => {
    it('is empty without a Cookie header', () => {
      expect({ ...authRequest().cookies }).toEqual({});
    });

    it('parses name=value pairs, trimming spaces, unquoting and percent-decoding values', () => {
      const { cookies } = authRequest({ headers: { cookie: ' sid=abc ; theme=dark%20mode;note="hi there"' } });
      expect({ ...cookies }).toEqual({ sid: 'abc', theme: 'dark mode', note: 'hi there' });
    });

    it('keeps the first of a repeated name', () => {
      expect(authRequest({ headers: { cookie: 'sid=first; sid=second' } }).cookies.sid).toBe('first');
    });

    it('keeps a value with a malformed escape as it is', () => {
      expect(authRequest({ headers: { cookie: 'v=100%' } }).cookies.v).toBe('100%');
    });

    it('skips parts without a name or without "="', () => {
      expect({ ...authRequest({ headers: { cookie: '=x; flag; a=1' } }).cookies }).toEqual({ a: '1' });
    });
  });

  describe('peer', () => {
    it('has the socket address and port, and an empty forwardedFor', () => {
      expect(authRequest({ remoteAddress: '10.1.2.3', remotePort: 40_123 }).peer).toEqual({
        address: '10.1.2.3',
        port: 40_123,
        forwardedFor: '',
      });
    });

    it('shows an IPv4 client of a dual-stack server without the ::ffff: prefix', () => {
      expect(authRequest({ remoteAddress: '::ffff:192.0.2.9' }).peer.address).toBe('192.0.2.9');
    });

    it('keeps an IPv6 address as it is', () => {
      expect(authRequest({ remoteAddress: '::1' }).peer.address).toBe('::1');
    });

    it('has the first X-Forwarded-For entry, trimmed, as forwardedFor', () => {
      expect(authRequest({ headers: { 'x-forwarded-for': '  203.0.113.7 , 10.0.0.1, 10.0.0.2' } }).peer.forwardedFor).toBe('203.0.113.7');
    });

    it('accepts IPv6 and bracketed X-Forwarded-For entries', () => {
      expect(authRequest({ headers: { 'x-forwarded-for': '2001:db8::1' } }).peer.forwardedFor).toBe('2001:db8::1');
      expect(authRequest({ headers: { 'x-forwarded-for': '[2001:db8::1]:443' } }).peer.forwardedFor).toBe('[2001:db8::1]:443');
    });

    it.each([
      ['empty', ''],
      ['starting with a comma', ', 10.0.0.1'],
      ['holding markup', '<script>alert(1)</script>'],
      ['holding a space inside an entry', '1.2.3.4 5.6.7.8'],
    ])('ignores an X-Forwarded-For that is %s (forwardedFor is empty) instead of failing', (_what, value) => {
      expect(authRequest({ headers: { 'x-forwarded-for': value } }).peer.forwardedFor).toBe('');
    });
  });
});
