import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
// From src, like the resolver (an internal module): 'nestjs-riverside' would type-check against dist.
import {
  env,
  InvalidOptionsError,
  JsonCodec,
  LocalTransport,
  type RiversideModuleOptions,
} from '../../src/index.js';
import { resolveRiversideOptions } from '../../src/module/riverside-options.resolver.js';
import { defaultMaxPendingSockets } from '../../src/server/pre-upgrade-guard.js';
import { CERT_PATH, KEY_PATH } from '../support/tls-fixture.js';

const CERT_PEM = readFileSync(CERT_PATH, 'utf8');
const KEY_PEM = readFileSync(KEY_PATH, 'utf8');

const KNOWN_OPTIONS =
  'port, host, path, codec, maxConnections, maxHandshakesPerSecond, maxConnectionAge, idleTimeout, reusePort, debug, transmissionLimit, ' +
  'tls, ws, invalidMessage, maxBackpressure, slowConsumer, allowedOrigins, subprotocols, router, shutdownTimeout, transport, ' +
  'metrics, bridge, handlerTimeout, maxQueuedMessages, maxChannelsPerSession, maxIdLength, presence, presenceHeartbeat, presenceTimeout, maxMetaSize, ' +
  'handshakeTimeout, maxPendingSockets, trustProxy';

/** Resolves options that the type system would reject, as a JavaScript caller or a config file could pass them. */
function resolveUntyped(options: Record<string, unknown>, nodeVersion?: string) {
  return resolveRiversideOptions(options as RiversideModuleOptions, process.env, nodeVersion);
}

/** The InvalidOptionsError that resolving `options` throws. */
function rejectionOf(options: Record<string, unknown>, nodeVersion?: string): InvalidOptionsError {
  try {
    resolveUntyped(options, nodeVersion);
  } catch (error) {
    if (error instanceof InvalidOptionsError) return error;
    throw error;
  }
  throw new Error(`Expected ${JSON.stringify(Object.keys(options))} to be rejected, but they resolved`);
}

describe('defaultMaxPendingSockets', () => {
  const limitsFile = (soft: string) => {
    const path = join(mkdtempSync(join(tmpdir(), 'limits-')), 'limits');
    writeFileSync(path, `Limit                     Soft Limit           Hard Limit           Units\nMax open files            ${soft}                20000                files\n`);
    return path;
  };

  it('is half the soft limit of open files', () => {
    expect(defaultMaxPendingSockets(limitsFile('20000'))).toBe(10_000);
  });

  it('is 32768 for an unlimited soft limit, and 1024 without /proc', () => {
    expect(defaultMaxPendingSockets(limitsFile('unlimited'))).toBe(32_768);
    expect(defaultMaxPendingSockets('/no/such/file')).toBe(1024);
  });
});

describe('resolveRiversideOptions', () => {
  describe('defaults (SPEC 1.1)', () => {
    const resolved = resolveRiversideOptions({});

    it('listens standalone on port 3000', () => {
      expect(resolved.mode).toBe('standalone');
      expect(resolved.port).toBe(3000);
    });

    it('binds every interface', () => {
      expect(resolved.host).toBeUndefined();
    });

    it("serves handlers on path '/'", () => {
      expect(resolved.path).toBe('/');
    });

    it('encodes with JsonCodec', () => {
      expect(resolved.codec).toBe(JsonCodec);
    });

    it('accepts 65536 connections', () => {
      expect(resolved.maxConnections).toBe(65_536);
    });

    it('never closes a connection for its age', () => {
      expect(resolved.maxConnectionAge).toBe(Infinity);
    });

    it('closes a connection idle for 60000 ms', () => {
      expect(resolved.idleTimeout).toBe(60_000);
    });

    it('does not set SO_REUSEPORT', () => {
      expect(resolved.reusePort).toBe(false);
    });

    it('logs no per-connection debug lines', () => {
      expect(resolved.debug).toBe(false);
    });

    it('limits each connection to 50 frames per 2000 ms', () => {
      expect(resolved.transmissionLimit).toEqual({ capacity: 50, duration: 2000 });
    });

    it('serves plain ws://, not TLS', () => {
      expect(resolved.tls).toBe(false);
    });

    it('caps frames at 1 MiB (not ws’s 100 MiB), leaves compression off and waits 5 s for a close frame (not ws’s 30 s)', () => {
      expect(resolved.ws).toEqual({ maxPayload: 1024 * 1024, perMessageDeflate: false, closeTimeout: 5000 });
    });

    it('ignores invalid messages', () => {
      expect(resolved.invalidMessage).toBe('ignore');
    });

    it('treats 4 MiB of unsent bytes as a slow consumer, and closes it', () => {
      expect(resolved.maxBackpressure).toBe(4 * 1024 * 1024);
      expect(resolved.slowConsumer).toBe('close');
    });

    it('allows every Origin and offers no subprotocol', () => {
      expect(resolved.isOriginAllowed).toBeNull();
      expect(resolved.subprotocols).toEqual([]);
    });

    it('has no custom router (so /health and the 404 are served)', () => {
      expect(resolved.router).toBeNull();
    });

    it('waits up to 5000 ms for @OnTerminate at shutdown', () => {
      expect(resolved.shutdownTimeout).toBe(5000);
    });

    it('gives up on a callback 30000 ms after its socket closed', () => {
      expect(resolved.handlerTimeout).toBe(30_000);
    });

    it('lets 10000 tasks wait for a busy connection, 100 channels per session, ids of 256 bytes', () => {
      expect(resolved.maxQueuedMessages).toBe(10_000);
      expect(resolved.maxChannelsPerSession).toBe(100);
      expect(resolved.maxIdLength).toBe(256);
    });

    it('gives a handshake 10 s', () => {
      expect(resolved.handshakeTimeout).toBe(10_000);
    });

    it('caps pending sockets at half the open-files limit', () => {
      expect(resolved.maxPendingSockets).toBe(defaultMaxPendingSockets());
      expect(resolved.maxPendingSockets).toBeGreaterThan(0);
    });

    it('reads forwardedFor from the left-most X-Forwarded-For entry (no trusted proxy)', () => {
      expect(resolved.readForwardedFor('127.0.0.1', '6.6.6.6, 10.0.0.1')).toBe('6.6.6.6');
    });

    it('delivers through a LocalTransport', () => {
      expect(resolved.transport).toBeInstanceOf(LocalTransport);
    });

    it('keeps cluster presence on, heartbeats it every 1000 ms, removes a silent node after 10000 ms, caps channel meta at 1024 bytes', () => {
      expect(resolved.presence).toBe(true);
      expect(resolved.presenceHeartbeat).toBe(1000);
      expect(resolved.presenceTimeout).toBe(10_000);
      expect(resolved.maxMetaSize).toBe(1024);
    });

    it('exposes no Prometheus metrics', () => {
      expect(resolved.metrics).toBeNull();
    });

    it('resolves undefined options like an empty object', () => {
      const fromUndefined = resolveRiversideOptions(undefined);
      expect({ ...fromUndefined, transport: null }).toEqual({ ...resolved, transport: null });
    });

    it('returns a frozen object', () => {
      expect(Object.isFrozen(resolved)).toBe(true);
      expect(Object.isFrozen(resolved.transmissionLimit)).toBe(true);
      expect(Object.isFrozen(resolved.ws)).toBe(true);
    });
  });

  describe('given values', () => {
    it("serves on the Nest HTTP server with port 'http'", () => {
      expect(resolveRiversideOptions({ port: 'http' })).toMatchObject({ mode: 'http' });
    });

    it('reads a numeric string as a port', () => {
      expect(resolveRiversideOptions({ port: '8080' }).port).toBe(8080);
    });

    it('accepts port 0 (a free port picked at listen)', () => {
      expect(resolveRiversideOptions({ port: 0 }).port).toBe(0);
    });

    it("treats '/chat/' and '/chat' as one path", () => {
      expect(resolveRiversideOptions({ path: '/chat/' }).path).toBe('/chat');
    });

    it('fills a partial transmissionLimit from the defaults', () => {
      expect(resolveRiversideOptions({ transmissionLimit: { capacity: 5 } }).transmissionLimit).toEqual({
        capacity: 5,
        duration: 2000,
      });
    });

    it('accepts an unlimited transmissionLimit capacity', () => {
      expect(resolveRiversideOptions({ transmissionLimit: { capacity: Infinity } }).transmissionLimit.capacity).toBe(
        Infinity,
      );
    });

    it('turns idleTimeout 0 into no idle timeout', () => {
      expect(resolveRiversideOptions({ idleTimeout: 0 }).idleTimeout).toBe(Infinity);
    });

    it('passes ws options through, keeping the 1 MiB maxPayload and the 5 s closeTimeout unless given', () => {
      expect(resolveRiversideOptions({ ws: { perMessageDeflate: true } }).ws).toEqual({
        perMessageDeflate: true,
        maxPayload: 1024 * 1024,
        closeTimeout: 5000,
      });
      expect(resolveRiversideOptions({ ws: { maxPayload: 16 } }).ws.maxPayload).toBe(16);
      expect(resolveRiversideOptions({ ws: { closeTimeout: 250 } }).ws.closeTimeout).toBe(250);
    });

    it('reads tls cert and key from file paths', () => {
      const { tls } = resolveRiversideOptions({ tls: { cert: CERT_PATH, key: KEY_PATH } });
      expect(tls).not.toBe(false);
      if (tls === false) return;
      expect(tls.cert.toString()).toBe(CERT_PEM);
      expect(tls.key.toString()).toBe(KEY_PEM);
    });

    it('takes tls cert and key as PEM strings', () => {
      expect(resolveRiversideOptions({ tls: { cert: CERT_PEM, key: KEY_PEM } }).tls).toEqual({
        cert: CERT_PEM,
        key: KEY_PEM,
      });
    });

    it('turns TLS off with tls.enabled false, without reading cert or key', () => {
      expect(resolveRiversideOptions({ tls: { enabled: false, cert: '/nonexistent.pem', key: '' } }).tls).toBe(false);
    });

    it('accepts reusePort on Node 22.12 and later', () => {
      for (const version of ['v22.12.0', 'v23.1.0', 'v24.0.0']) {
        expect(resolveRiversideOptions({ reusePort: true }, process.env, version).reusePort).toBe(true);
      }
    });

    it('checks an allowedOrigins list case-insensitively', () => {
      const { isOriginAllowed } = resolveRiversideOptions({ allowedOrigins: ['https://App.example.com'] });
      expect(isOriginAllowed?.('https://app.example.com')).toBe(true);
      expect(isOriginAllowed?.('https://evil.example.com')).toBe(false);
    });
  });

  // Riverside's test/config_test.exs (reference B2) for `port`, and the same indirection for tls.
  describe('env() indirection (SPEC 1.2, Riverside B2)', () => {
    afterEach(() => {
      vi.unstubAllEnvs();
    });

    it('uses the default when the variable is unset', () => {
      vi.stubEnv('TEST_PORT', undefined);
      expect(resolveRiversideOptions({ port: env('TEST_PORT', 8080) }).port).toBe(8080);
    });

    it('reads the port from the variable when it is set', () => {
      vi.stubEnv('TEST_PORT', '3000');
      expect(resolveRiversideOptions({ port: env('TEST_PORT', 80) }).port).toBe(3000);
    });

    it('fails naming the port option and the variable when the variable is not a number', () => {
      vi.stubEnv('TEST_PORT', 'INVALID_TYPE');
      expect(rejectionOf({ port: env('TEST_PORT', 80) }).message).toBe(
        'RiversideModule: invalid option "port": expected an integer from 0 to 65535, a numeric string, ' +
          `env('VAR', default) or 'http', got "INVALID_TYPE" (from env TEST_PORT).`,
      );
    });

    it('fails naming the variable when its default is not a port', () => {
      vi.stubEnv('OTHER_PORT', undefined);
      expect(rejectionOf({ port: env('OTHER_PORT', 'INVALID_TYPE') }).message).toBe(
        'RiversideModule: invalid option "port": expected an integer from 0 to 65535, a numeric string, ' +
          `env('VAR', default) or 'http', got "INVALID_TYPE" (default of env OTHER_PORT).`,
      );
    });

    it("shares the Nest HTTP server when the variable says 'http'", () => {
      vi.stubEnv('TEST_PORT', 'http');
      expect(resolveRiversideOptions({ port: env('TEST_PORT', 3000) }).mode).toBe('http');
    });

    it("turns TLS on when tls.enabled's variable is 'true'", () => {
      vi.stubEnv('TEST_TLS', 'true');
      const { tls } = resolveRiversideOptions({ tls: { enabled: env('TEST_TLS', false), cert: CERT_PEM, key: KEY_PEM } });
      expect(tls).toEqual({ cert: CERT_PEM, key: KEY_PEM });
    });

    it("turns TLS off when tls.enabled's variable is 'false'", () => {
      vi.stubEnv('TEST_TLS', 'false');
      expect(resolveRiversideOptions({ tls: { enabled: env('TEST_TLS', true), cert: CERT_PEM, key: KEY_PEM } }).tls).toBe(
        false,
      );
    });

    it("uses tls.enabled's default when its variable is unset", () => {
      vi.stubEnv('TEST_TLS', undefined);
      expect(resolveRiversideOptions({ tls: { enabled: env('TEST_TLS', false), cert: CERT_PEM, key: KEY_PEM } }).tls).toBe(
        false,
      );
    });

    it("fails naming tls.enabled and the variable when it is neither 'true' nor 'false'", () => {
      vi.stubEnv('TEST_TLS', 'yes');
      expect(rejectionOf({ tls: { enabled: env('TEST_TLS', false), cert: CERT_PEM, key: KEY_PEM } }).message).toBe(
        `RiversideModule: invalid option "tls.enabled": expected true, false, 'true' or 'false', got "yes" (from env TEST_TLS).`,
      );
    });

    it('reads the tls cert and key paths from variables', () => {
      vi.stubEnv('TEST_TLS_CERT', CERT_PATH);
      vi.stubEnv('TEST_TLS_KEY', KEY_PATH);
      const { tls } = resolveRiversideOptions({
        tls: { cert: env('TEST_TLS_CERT', ''), key: env('TEST_TLS_KEY', '') },
      });
      expect(tls === false ? null : [tls.cert.toString(), tls.key.toString()]).toEqual([CERT_PEM, KEY_PEM]);
    });

    it('fails naming tls.cert and the variable when the path it holds cannot be read', () => {
      vi.stubEnv('TEST_TLS_CERT', '/nonexistent/cert.pem');
      expect(rejectionOf({ tls: { cert: env('TEST_TLS_CERT', ''), key: KEY_PEM } }).message).toBe(
        'RiversideModule: invalid option "tls.cert": expected a readable PEM file (reading it failed: ENOENT), ' +
          'got "/nonexistent/cert.pem" (from env TEST_TLS_CERT).',
      );
    });
  });

  describe('validation (SPEC 1.3): each failure names the option, the value and what is accepted', () => {
    it('rejects a handshakeTimeout that is not a positive integer', () => {
      expect(rejectionOf({ handshakeTimeout: 0 }).message).toBe(
        'RiversideModule: invalid option "handshakeTimeout": expected a positive integer, got 0.',
      );
      expect(rejectionOf({ handshakeTimeout: Infinity }).option).toBe('handshakeTimeout');
    });

    it('rejects a maxPendingSockets that is not a positive integer', () => {
      expect(rejectionOf({ maxPendingSockets: -5 }).message).toBe(
        'RiversideModule: invalid option "maxPendingSockets": expected a positive integer, got -5.',
      );
    });

    it('rejects a trustProxy that is neither a hop count nor addresses', () => {
      const error = rejectionOf({ trustProxy: 1.5 });
      expect(error.option).toBe('trustProxy');
      expect(error.message).toContain('expected true, false, a number of proxy hops (0, 1, 2...), or addresses / CIDR ranges');
      expect(rejectionOf({ trustProxy: [] }).option).toBe('trustProxy');
      expect(rejectionOf({ trustProxy: '10.0.0.1/8/9' }).message).toContain('got "10.0.0.1/8/9"');
    });

    it('rejects metrics.port out of range, and metrics.port with path false', () => {
      expect(rejectionOf({ metrics: { port: 70000 } }).message).toBe(
        'RiversideModule: invalid option "metrics.port": expected an integer from 0 to 65535 (a port of their own for the metrics), got 70000.',
      );
      expect(rejectionOf({ metrics: { port: 9100, path: false } }).option).toBe('metrics.port');
    });

    it('rejects an unknown option', () => {
      const error = rejectionOf({ prot: 3000 });
      expect(error.option).toBe('prot');
      expect(error.code).toBe('RIVERSIDE_ERR_INVALID_OPTIONS');
      expect(error.message).toBe(
        `RiversideModule: unknown option "prot" (got 3000); the known options there are ${KNOWN_OPTIONS}.`,
      );
    });

    it('rejects an unknown transmissionLimit key', () => {
      expect(rejectionOf({ transmissionLimit: { capacity: 5, window: 100 } }).message).toBe(
        'RiversideModule: unknown option "transmissionLimit.window" (got 100); the known options there are capacity, duration.',
      );
    });

    it('rejects an unknown tls key', () => {
      expect(rejectionOf({ tls: { cert: CERT_PATH, key: KEY_PATH, pfx: 'x' } }).message).toBe(
        'RiversideModule: unknown option "tls.pfx" (got "x"); the known options there are enabled, cert, key, passphrase, ca.',
      );
    });

    it('rejects a port of the wrong type', () => {
      expect(rejectionOf({ port: true }).message).toBe(
        'RiversideModule: invalid option "port": expected an integer from 0 to 65535, a numeric string, ' +
          `env('VAR', default) or 'http', got true.`,
      );
    });

    it('rejects a port string with spaces around the number', () => {
      expect(rejectionOf({ port: ' 8080' }).message).toBe(
        'RiversideModule: invalid option "port": expected an integer from 0 to 65535, a numeric string, ' +
          `env('VAR', default) or 'http', got " 8080".`,
      );
    });

    it('rejects a port above 65535', () => {
      expect(rejectionOf({ port: 70000 }).message).toBe(
        'RiversideModule: invalid option "port": expected an integer from 0 to 65535, a numeric string, ' +
          `env('VAR', default) or 'http', got 70000.`,
      );
    });

    it('rejects a limit given as a string', () => {
      expect(rejectionOf({ maxConnections: '10' }).message).toBe(
        'RiversideModule: invalid option "maxConnections": expected a positive integer, got "10".',
      );
    });

    it('rejects a maxHandshakesPerSecond that is not a positive integer', () => {
      expect(rejectionOf({ maxHandshakesPerSecond: 0 }).message).toBe(
        'RiversideModule: invalid option "maxHandshakesPerSecond": expected a positive integer or Infinity, got 0.',
      );
      expect(resolveUntyped({}).maxHandshakesPerSecond).toBe(Infinity);
    });

    it('rejects a negative maxConnections', () => {
      expect(rejectionOf({ maxConnections: -1 }).message).toBe(
        'RiversideModule: invalid option "maxConnections": expected a positive integer, got -1.',
      );
    });

    it('rejects a zero transmissionLimit capacity', () => {
      expect(rejectionOf({ transmissionLimit: { capacity: 0 } }).message).toBe(
        'RiversideModule: invalid option "transmissionLimit.capacity": expected a positive integer or Infinity, got 0.',
      );
    });

    it('rejects a zero transmissionLimit duration', () => {
      expect(rejectionOf({ transmissionLimit: { duration: 0 } }).message).toBe(
        'RiversideModule: invalid option "transmissionLimit.duration": expected a positive integer, got 0.',
      );
    });

    it('rejects a negative idleTimeout', () => {
      expect(rejectionOf({ idleTimeout: -5 }).message).toBe(
        'RiversideModule: invalid option "idleTimeout": expected a positive integer or Infinity, got -5.',
      );
    });

    it('accepts handlerTimeout Infinity, and rejects 0', () => {
      expect(resolveRiversideOptions({ handlerTimeout: Infinity }).handlerTimeout).toBe(Infinity);
      expect(rejectionOf({ handlerTimeout: 0 }).message).toBe(
        'RiversideModule: invalid option "handlerTimeout": expected a positive integer or Infinity, got 0.',
      );
    });

    it.each(['maxQueuedMessages', 'maxChannelsPerSession', 'maxIdLength'])('rejects a non-integer %s', (option) => {
      const error = rejectionOf({ [option]: 2.5 });
      expect(error.option).toBe(option);
      expect(error.message).toBe(`RiversideModule: invalid option "${option}": expected a positive integer, got 2.5.`);
    });

    it('rejects a zero maxConnectionAge', () => {
      expect(rejectionOf({ maxConnectionAge: 0 }).message).toBe(
        'RiversideModule: invalid option "maxConnectionAge": expected a positive integer or Infinity, got 0.',
      );
    });

    it('rejects a fractional ws.maxPayload', () => {
      expect(rejectionOf({ ws: { maxPayload: 1.5 } }).message).toBe(
        'RiversideModule: invalid option "ws.maxPayload": expected a positive integer, got 1.5.',
      );
    });

    it('rejects a debug flag that is not a boolean', () => {
      expect(rejectionOf({ debug: 'yes' }).message).toBe(
        'RiversideModule: invalid option "debug": expected true or false, got "yes".',
      );
    });

    it('rejects an invalidMessage policy it does not know', () => {
      expect(rejectionOf({ invalidMessage: 'drop' }).message).toBe(
        `RiversideModule: invalid option "invalidMessage": expected 'ignore' or 'close', got "drop".`,
      );
    });

    it('rejects a path without a leading slash', () => {
      expect(rejectionOf({ path: 'chat' }).message).toBe(
        `RiversideModule: invalid option "path": expected a URL path starting with '/' (no query, fragment or spaces), got "chat".`,
      );
    });

    it('rejects tls: true', () => {
      expect(rejectionOf({ tls: true }).message).toBe(
        'RiversideModule: invalid option "tls": expected false or { cert, key } (PEM strings or file paths), got true.',
      );
    });

    it('rejects tls without a cert', () => {
      expect(rejectionOf({ tls: { key: KEY_PATH } }).message).toBe(
        'RiversideModule: invalid option "tls.cert": expected a PEM string or the path of a PEM file ' +
          '(TLS needs both cert and key), got undefined.',
      );
    });

    it('rejects tls without a key', () => {
      expect(rejectionOf({ tls: { cert: CERT_PATH } }).message).toBe(
        'RiversideModule: invalid option "tls.key": expected a PEM string or the path of a PEM file ' +
          '(TLS needs both cert and key), got undefined.',
      );
    });

    it('rejects a tls cert path that cannot be read', () => {
      expect(rejectionOf({ tls: { cert: '/nonexistent/cert.pem', key: KEY_PATH } }).message).toBe(
        'RiversideModule: invalid option "tls.cert": expected a readable PEM file (reading it failed: ENOENT), ' +
          'got "/nonexistent/cert.pem".',
      );
    });

    it('rejects reusePort on a Node without SO_REUSEPORT (Node 20)', () => {
      expect(rejectionOf({ reusePort: true }, 'v20.19.0').message).toBe(
        'RiversideModule: invalid option "reusePort": expected a Node.js that supports SO_REUSEPORT ' +
          '(>= 22.12; on Node 23, >= 23.1); this is v20.19.0, got true.',
      );
    });

    it('rejects reusePort on Node 23.0, which lacks SO_REUSEPORT', () => {
      expect(rejectionOf({ reusePort: true }, 'v23.0.0').message).toBe(
        'RiversideModule: invalid option "reusePort": expected a Node.js that supports SO_REUSEPORT ' +
          '(>= 22.12; on Node 23, >= 23.1); this is v23.0.0, got true.',
      );
    });

    it('rejects a codec without frameType', () => {
      expect(rejectionOf({ codec: { encode: String, decode: String } }).message).toBe(
        'RiversideModule: invalid option "codec": expected a codec ' +
          "({ frameType: 'text' | 'binary', encode(), decode() }) or a codec class, got {}.",
      );
    });

    it('rejects a codec without encode', () => {
      expect(rejectionOf({ codec: { frameType: 'text', decode: String } }).message).toBe(
        'RiversideModule: invalid option "codec": expected a codec ' +
          `({ frameType: 'text' | 'binary', encode(), decode() }) or a codec class, got {"frameType":"text"}.`,
      );
    });

    it('rejects a codec without decode', () => {
      expect(rejectionOf({ codec: { frameType: 'binary', encode: String } }).message).toBe(
        'RiversideModule: invalid option "codec": expected a codec ' +
          `({ frameType: 'text' | 'binary', encode(), decode() }) or a codec class, got {"frameType":"binary"}.`,
      );
    });

    it('rejects a codec whose frameType is neither text nor binary', () => {
      expect(rejectionOf({ codec: { frameType: 'xml', encode: String, decode: String } }).message).toBe(
        'RiversideModule: invalid option "codec": expected a codec ' +
          `({ frameType: 'text' | 'binary', encode(), decode() }) or a codec class, got {"frameType":"xml"}.`,
      );
    });

    it('rejects ws.noServer, which Riverside owns', () => {
      expect(rejectionOf({ ws: { noServer: true } }).message).toBe(
        `RiversideModule: invalid option "ws.noServer": expected nothing: Riverside sets ws's "noServer" itself, got true.`,
      );
    });

    it('rejects ws.port, which Riverside owns', () => {
      expect(rejectionOf({ ws: { port: 9000 } }).message).toBe(
        `RiversideModule: invalid option "ws.port": expected nothing: Riverside sets ws's "port" itself, got 9000.`,
      );
    });

    it("rejects tls with port 'http'", () => {
      expect(rejectionOf({ port: 'http', tls: { cert: CERT_PATH, key: KEY_PATH } }).message).toBe(
        `RiversideModule: invalid option "tls": expected false with port 'http' (the Nest HTTP server carries its own TLS), ` +
          `got ${JSON.stringify({ cert: CERT_PATH, key: KEY_PATH })}.`,
      );
    });

    it("never prints a PEM key or passphrase when rejecting tls with port 'http'", () => {
      const { message } = rejectionOf({ port: 'http', tls: { cert: CERT_PEM, key: KEY_PEM, passphrase: 'hunter2' } });
      expect(message).toBe(
        `RiversideModule: invalid option "tls": expected false with port 'http' (the Nest HTTP server carries its own TLS), ` +
          `got {"cert":"(PEM)","key":"(PEM)","passphrase":"(hidden)"}.`,
      );
    });

    it("rejects a router with port 'http'", () => {
      const router = () => undefined;
      expect(rejectionOf({ port: 'http', router }).message).toBe(
        `RiversideModule: invalid option "router": expected nothing with port 'http' (the app's controllers serve HTTP), got function router.`,
      );
    });

    it("rejects reusePort with port 'http'", () => {
      expect(rejectionOf({ port: 'http', reusePort: true }, 'v22.12.0').message).toBe(
        `RiversideModule: invalid option "reusePort": expected false with port 'http' (the Nest HTTP server owns the port), got true.`,
      );
    });

    it('rejects a router that is not a function', () => {
      expect(rejectionOf({ router: '/health' }).message).toBe(
        'RiversideModule: invalid option "router": expected a request listener (req, res) => void, got "/health".',
      );
    });

    it('rejects a presenceHeartbeat, presenceTimeout or maxMetaSize that is not a positive integer', () => {
      expect(rejectionOf({ presenceHeartbeat: 0 }).message).toBe(
        'RiversideModule: invalid option "presenceHeartbeat": expected a positive integer, got 0.',
      );
      expect(rejectionOf({ presenceTimeout: '10s' }).message).toBe(
        'RiversideModule: invalid option "presenceTimeout": expected a positive integer, got "10s".',
      );
      expect(rejectionOf({ maxMetaSize: -1 }).message).toBe(
        'RiversideModule: invalid option "maxMetaSize": expected a positive integer, got -1.',
      );
    });

    it('rejects a presence that is not a boolean, and presence timings given with presence off', () => {
      expect(rejectionOf({ presence: 'off' }).message).toBe('RiversideModule: invalid option "presence": expected true or false, got "off".');
      expect(rejectionOf({ presence: false, presenceHeartbeat: 500 }).message).toBe(
        'RiversideModule: invalid option "presenceHeartbeat": expected no value when presence is false ' +
          '(nothing heartbeats: remove it, or turn presence on), got 500.',
      );
      expect(rejectionOf({ presence: false, presenceTimeout: 30_000 }).option).toBe('presenceTimeout');
      expect(resolveRiversideOptions({ presence: false }).presence).toBe(false);
    });

    it('rejects a presenceTimeout shorter than 3 heartbeats (a node is suspected after 3)', () => {
      expect(rejectionOf({ presenceHeartbeat: 2000, presenceTimeout: 5000 }).message).toBe(
        'RiversideModule: invalid option "presenceTimeout": expected a positive integer of at least 3 × presenceHeartbeat (6000): ' +
          'a node is suspected after 3 missed heartbeats, and removed only after presenceTimeout, got 5000.',
      );
      expect(resolveRiversideOptions({ presenceHeartbeat: 5000 }).presenceTimeout).toBe(15_000);
    });

    it('rejects a transport that is not a RiversideTransport', () => {
      expect(rejectionOf({ transport: { publish() {} } }).message).toBe(
        'RiversideModule: invalid option "transport": expected a RiversideTransport ' +
          '(connect, publish, subscribe, unsubscribe, close), got {}.',
      );
    });
  });
});
