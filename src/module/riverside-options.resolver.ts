import type { Type } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Codec, isCodec } from '../codec/codec.interface.js';
import { JsonCodec } from '../codec/json.codec.js';
import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import { invalidOptionMessage, unknownOptionMessage } from '../riverside.messages.js';
import { LocalTransport } from '../cluster/local.transport.js';
import { isTransport, type RiversideTransport } from '../cluster/transport.interface.js';
import { compileTrustList, type ForwardedForReader, leftMostForwardedFor, trustedForwardedFor } from '../auth/forwarded-for.js';
import { defaultMaxPendingSockets } from '../server/pre-upgrade-guard.js';
import { readEnvRef } from './env.js';
import type {
  RiversideModuleOptions,
  RiversideWsOptions,
  TransmissionLimit,
} from './riverside-options.interface.js';

/** The options after defaults, env indirection and validation: what the runtime reads. */
export interface ResolvedRiversideOptions {
  /** 'standalone': our own HTTP(S) server on `port`; 'http': the Nest HTTP server. */
  readonly mode: 'standalone' | 'http';
  readonly port: number;
  readonly host: string | undefined;
  readonly path: string;
  readonly codec: Codec | Type<Codec>;
  readonly maxConnections: number;
  readonly maxHandshakesPerSecond: number;
  readonly maxConnectionAge: number;
  readonly idleTimeout: number;
  readonly reusePort: boolean;
  readonly debug: boolean;
  readonly transmissionLimit: Readonly<TransmissionLimit>;
  readonly tls: false | { cert: string | Buffer; key: string | Buffer; passphrase?: string; ca?: unknown };
  readonly ws: Readonly<RiversideWsOptions> & { maxPayload: number; closeTimeout: number };
  readonly invalidMessage: 'ignore' | 'close';
  readonly maxBackpressure: number;
  readonly slowConsumer: 'close' | 'drop';
  readonly isOriginAllowed: ((origin: string) => boolean) | null;
  readonly subprotocols: readonly string[];
  readonly router: ((req: IncomingMessage, res: ServerResponse) => void) | null;
  readonly shutdownTimeout: number;
  readonly handlerTimeout: number;
  readonly maxQueuedMessages: number;
  readonly maxChannelsPerSession: number;
  readonly maxIdLength: number;
  readonly handshakeTimeout: number;
  readonly maxPendingSockets: number;
  readonly readForwardedFor: ForwardedForReader;
  readonly transport: RiversideTransport;
  readonly metrics: {
    readonly path: string | null;
    readonly prefix: string;
    readonly registry: unknown;
    /** A port of their own for the metrics (null: served beside the handlers). */
    readonly port: number | null;
    readonly host: string | undefined;
  } | null;
  readonly bridge: boolean;
  readonly presence: boolean;
  readonly presenceHeartbeat: number;
  readonly presenceTimeout: number;
  readonly maxMetaSize: number;
}

const KNOWN_OPTIONS: readonly (keyof RiversideModuleOptions)[] = [
  'port', 'host', 'path', 'codec', 'maxConnections', 'maxHandshakesPerSecond', 'maxConnectionAge', 'idleTimeout', 'reusePort',
  'debug', 'transmissionLimit', 'tls', 'ws', 'invalidMessage', 'maxBackpressure', 'slowConsumer',
  'allowedOrigins', 'subprotocols', 'router', 'shutdownTimeout', 'transport', 'metrics', 'bridge',
  'handlerTimeout', 'maxQueuedMessages', 'maxChannelsPerSession', 'maxIdLength',
  'presence', 'presenceHeartbeat', 'presenceTimeout', 'maxMetaSize',
  'handshakeTimeout', 'maxPendingSockets', 'trustProxy',
];
/**
 * ms a close waits for the client's close frame before ws drops the socket (ws's own default is
 * 30 s): a peer that is gone or no longer reads holds its socket, slot and @OnTerminate no longer.
 */
const DEFAULT_CLOSE_TIMEOUT = 5000;
const WS_OPTIONS_OWNED_BY_RIVERSIDE = [
  'server', 'port', 'host', 'path', 'noServer', 'verifyClient', 'handleProtocols', 'clientTracking', 'backlog',
];
const ONE_MIB = 1024 * 1024;
/** SO_REUSEPORT reached net.Server#listen in Node 22.12 and 23.1 (23.0 lacks it). */
const REUSE_PORT_SINCE: readonly [number, number] = [22, 12];
const REUSE_PORT_SINCE_23: readonly [number, number] = [23, 1];
// Forbidden in a subprotocol token by RFC 6455 (it must be an RFC 7230 token).
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function fail(option: string, value: unknown, expected: string, source = ''): never {
  throw new InvalidOptionsError(option, invalidOptionMessage(option, value, expected, source));
}

function rejectUnknownKeys(prefix: string, raw: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(raw)) {
    if (!known.includes(key)) {
      const option = prefix + key;
      throw new InvalidOptionsError(option, unknownOptionMessage(option, raw[key], known));
    }
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function positiveInteger(option: string, value: unknown, fallback: number, allowInfinity = false): number {
  if (value === undefined) return fallback;
  if (allowInfinity && value === Infinity) return Infinity;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    fail(option, value, allowInfinity ? 'a positive integer or Infinity' : 'a positive integer');
  }
  return value;
}

function oneOf<T extends string>(option: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) fail(option, value, allowed.map((a) => `'${a}'`).join(' or '));
  return value as T;
}

function booleanOption(option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') fail(option, value, 'true or false');
  return value;
}

function resolvePort(raw: unknown, environment: NodeJS.ProcessEnv): { mode: 'standalone' | 'http'; port: number } {
  const { value, source } = readEnvRef(raw ?? 3000, environment);
  if (value === 'http') return { mode: 'http', port: 0 };
  const port = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    fail('port', value, "an integer from 0 to 65535, a numeric string, env('VAR', default) or 'http'", source);
  }
  return { mode: 'standalone', port };
}

function resolveBooleanEnv(option: string, raw: unknown, fallback: boolean, environment: NodeJS.ProcessEnv): boolean {
  const { value, source } = readEnvRef(raw ?? fallback, environment);
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  return fail(option, value, "true, false, 'true' or 'false'", source);
}

function readPem(option: string, raw: unknown, environment: NodeJS.ProcessEnv): string | Buffer {
  const { value, source } = readEnvRef(raw, environment);
  if (Buffer.isBuffer(value)) return value;
  if (typeof value !== 'string' || value === '') fail(option, value, 'a PEM string or the path of a PEM file', source);
  if (value.includes('-----BEGIN')) return value;
  try {
    return readFileSync(value);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    return fail(option, value, `a readable PEM file (reading it failed: ${reason})`, source);
  }
}

/** The tls option as an error message may show it: a PEM body or a passphrase must not reach the logs. */
function redactTls(raw: unknown): unknown {
  if (!isPlainObject(raw)) return raw;
  const shown: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    shown[key] =
      key === 'passphrase' ? '(hidden)' : typeof value === 'string' && value.includes('-----BEGIN') ? '(PEM)' : value;
  }
  return shown;
}

function resolveTls(raw: unknown, environment: NodeJS.ProcessEnv): ResolvedRiversideOptions['tls'] {
  if (raw === undefined || raw === false) return false;
  if (!isPlainObject(raw)) return fail('tls', raw, 'false or { cert, key } (PEM strings or file paths)');
  rejectUnknownKeys('tls.', raw, ['enabled', 'cert', 'key', 'passphrase', 'ca']);
  if (!resolveBooleanEnv('tls.enabled', raw.enabled, true, environment)) return false;
  if (raw.cert === undefined) fail('tls.cert', undefined, 'a PEM string or the path of a PEM file (TLS needs both cert and key)');
  if (raw.key === undefined) fail('tls.key', undefined, 'a PEM string or the path of a PEM file (TLS needs both cert and key)');
  return {
    cert: readPem('tls.cert', raw.cert, environment),
    key: readPem('tls.key', raw.key, environment),
    ...(raw.passphrase !== undefined && { passphrase: String(raw.passphrase) }),
    ...(raw.ca !== undefined && { ca: raw.ca }),
  };
}

function resolveWs(raw: unknown): ResolvedRiversideOptions['ws'] {
  if (raw === undefined) return { maxPayload: ONE_MIB, perMessageDeflate: false, closeTimeout: DEFAULT_CLOSE_TIMEOUT };
  if (!isPlainObject(raw)) return fail('ws', raw, 'an object of ws server options');
  for (const key of WS_OPTIONS_OWNED_BY_RIVERSIDE) {
    if (key in raw) fail(`ws.${key}`, raw[key], `nothing: Riverside sets ws's "${key}" itself`);
  }
  return {
    perMessageDeflate: false,
    ...raw,
    maxPayload: positiveInteger('ws.maxPayload', raw.maxPayload, ONE_MIB),
    closeTimeout: positiveInteger('ws.closeTimeout', raw.closeTimeout, DEFAULT_CLOSE_TIMEOUT),
  };
}

function resolveTransmissionLimit(raw: unknown): TransmissionLimit {
  if (raw === undefined) return { capacity: 50, duration: 2000 };
  if (!isPlainObject(raw)) return fail('transmissionLimit', raw, '{ capacity, duration }');
  rejectUnknownKeys('transmissionLimit.', raw, ['capacity', 'duration']);
  return {
    capacity: positiveInteger('transmissionLimit.capacity', raw.capacity, 50, true),
    duration: positiveInteger('transmissionLimit.duration', raw.duration, 2000),
  };
}

function resolveCodec(raw: unknown): Codec | Type<Codec> {
  if (raw === undefined) return JsonCodec;
  if (typeof raw === 'function' || isCodec(raw)) return raw as Codec | Type<Codec>;
  return fail('codec', raw, "a codec ({ frameType: 'text' | 'binary', encode(), decode() }) or a codec class");
}

function resolveOrigins(raw: unknown): ((origin: string) => boolean) | null {
  if (raw === undefined) return null;
  if (typeof raw === 'function') return raw as (origin: string) => boolean;
  if (Array.isArray(raw) && raw.every((origin) => typeof origin === 'string')) {
    const allowed = new Set(raw.map((origin: string) => origin.toLowerCase()));
    return (origin) => allowed.has(origin.toLowerCase());
  }
  return fail('allowedOrigins', raw, "an array of origins (e.g. ['https://app.example.com']) or a function");
}

export function resolveSubprotocols(option: string, raw: unknown): readonly string[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw) || !raw.every((p) => typeof p === 'string' && TOKEN.test(p))) {
    fail(option, raw, 'an array of subprotocol names (HTTP tokens, e.g. ["chat.v1"])');
  }
  return Object.freeze([...raw]);
}

export function resolvePath(option: string, raw: unknown, fallback: string): string {
  if (raw === undefined) return fallback;
  if (typeof raw !== 'string' || !raw.startsWith('/') || /[?#\s]/.test(raw)) {
    fail(option, raw, "a URL path starting with '/' (no query, fragment or spaces)");
  }
  return normalizePath(raw);
}

/** '/chat/' and '/chat' are one path, as in Cowboy's router. */
export function normalizePath(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

function resolveMetrics(raw: unknown): ResolvedRiversideOptions['metrics'] {
  if (raw === undefined || raw === false) return null;
  const options = raw === true ? {} : raw;
  if (!isPlainObject(options)) return fail('metrics', raw, 'true, false or { path?, prefix?, registry?, port?, host? }');
  rejectUnknownKeys('metrics.', options, ['path', 'prefix', 'registry', 'port', 'host']);
  const prefix = options.prefix ?? 'riverside_';
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) {
    fail('metrics.prefix', prefix, 'a Prometheus metric name prefix such as "riverside_"');
  }
  const path = options.path === false ? null : resolvePath('metrics.path', options.path, '/metrics');
  if (options.registry !== undefined && typeof (options.registry as { metrics?: unknown }).metrics !== 'function') {
    fail('metrics.registry', options.registry, 'a prom-client Registry');
  }
  const port = options.port ?? null;
  if (port !== null && (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535)) {
    fail('metrics.port', port, 'an integer from 0 to 65535 (a port of their own for the metrics)');
  }
  if (options.host !== undefined && (typeof options.host !== 'string' || options.host === '')) {
    fail('metrics.host', options.host, "an interface address such as '127.0.0.1'");
  }
  if (options.host !== undefined && port === null) {
    fail('metrics.host', options.host, 'nothing without metrics.port (the host of the metrics port)');
  }
  if (port !== null && path === null) fail('metrics.port', port, 'nothing with metrics.path false');
  return Object.freeze({ path, prefix, registry: options.registry ?? null, port, host: options.host as string | undefined });
}

function resolveTrustProxy(raw: unknown): ForwardedForReader {
  if (raw === undefined) return leftMostForwardedFor;
  const expected =
    "true, false, a number of proxy hops (0, 1, 2...), or addresses / CIDR ranges of trusted proxies ('10.0.0.0/8', 'loopback', 'linklocal', 'uniquelocal')";
  if (raw === true) return trustedForwardedFor(() => true);
  if (raw === false) return trustedForwardedFor(() => false);
  if (typeof raw === 'number') {
    if (!Number.isInteger(raw) || raw < 0) fail('trustProxy', raw, expected);
    return trustedForwardedFor((_address, hop) => hop < raw);
  }
  if (typeof raw === 'function') return trustedForwardedFor(raw as (address: string, hop: number) => boolean);
  const entries = typeof raw === 'string' ? raw.split(',').map((entry) => entry.trim()) : raw;
  if (!Array.isArray(entries) || entries.length === 0 || !entries.every((entry) => typeof entry === 'string')) {
    return fail('trustProxy', raw, expected);
  }
  const compiled = compileTrustList(entries);
  if ('invalid' in compiled) return fail('trustProxy', compiled.invalid, expected);
  return trustedForwardedFor(compiled.trust);
}

function resolveBridge(raw: unknown, transport: RiversideTransport): boolean {
  const bridge = booleanOption('bridge', raw, false);
  if (bridge && transport instanceof LocalTransport) {
    fail('bridge', true, 'a cluster transport (RedisTransport, NatsTransport...) to listen on; the local transport has none');
  }
  return bridge;
}

function resolvePresence(options: Record<string, unknown>): { presence: boolean; presenceHeartbeat: number; presenceTimeout: number } {
  const presence = booleanOption('presence', options.presence, true);
  if (!presence) {
    for (const option of ['presenceHeartbeat', 'presenceTimeout'] as const) {
      if (options[option] !== undefined) fail(option, options[option], 'no value when presence is false (nothing heartbeats: remove it, or turn presence on)');
    }
  }
  const presenceHeartbeat = positiveInteger('presenceHeartbeat', options.presenceHeartbeat, 1000);
  const presenceTimeout = positiveInteger('presenceTimeout', options.presenceTimeout, Math.max(10_000, 3 * presenceHeartbeat));
  if (presenceTimeout < 3 * presenceHeartbeat) {
    fail('presenceTimeout', presenceTimeout, `a positive integer of at least 3 × presenceHeartbeat (${3 * presenceHeartbeat}): a node is suspected after 3 missed heartbeats, and removed only after presenceTimeout`);
  }
  return { presence, presenceHeartbeat, presenceTimeout };
}

function supportsReusePort(nodeVersion: string): boolean {
  const [major, minor] = nodeVersion.replace(/^v/, '').split('.').map(Number);
  if (major === REUSE_PORT_SINCE[0]) return minor >= REUSE_PORT_SINCE[1];
  if (major === REUSE_PORT_SINCE_23[0]) return minor >= REUSE_PORT_SINCE_23[1];
  return major > REUSE_PORT_SINCE_23[0];
}

/**
 * Applies defaults, reads env indirections and validates every option. Called once, from the
 * options provider's factory, so `forRoot` and `forRootAsync` options are checked alike.
 */
export function resolveRiversideOptions(
  raw: RiversideModuleOptions | undefined,
  environment: NodeJS.ProcessEnv = process.env,
  nodeVersion: string = process.version,
): ResolvedRiversideOptions {
  const options = (raw ?? {}) as Record<string, unknown>;
  if (!isPlainObject(options)) fail('(options)', raw, 'an options object');
  rejectUnknownKeys('', options, KNOWN_OPTIONS);
  const { mode, port } = resolvePort(options.port, environment);
  const reusePort = booleanOption('reusePort', options.reusePort, false);
  if (reusePort && !supportsReusePort(nodeVersion)) {
    fail('reusePort', true, `a Node.js that supports SO_REUSEPORT (>= ${REUSE_PORT_SINCE.join('.')}; on Node 23, >= ${REUSE_PORT_SINCE_23.join('.')}); this is ${nodeVersion}`);
  }
  if (options.host !== undefined && (typeof options.host !== 'string' || options.host === '')) {
    fail('host', options.host, "an interface address such as '127.0.0.1' or '::'");
  }
  const tls = resolveTls(options.tls, environment);
  if (mode === 'http') {
    if (tls) fail('tls', redactTls(options.tls), "false with port 'http' (the Nest HTTP server carries its own TLS)");
    if (options.router !== undefined) fail('router', options.router, "nothing with port 'http' (the app's controllers serve HTTP)");
    if (reusePort) fail('reusePort', true, "false with port 'http' (the Nest HTTP server owns the port)");
  }
  if (options.router !== undefined && typeof options.router !== 'function') {
    fail('router', options.router, 'a request listener (req, res) => void');
  }
  const idleTimeout = options.idleTimeout === 0 ? Infinity : positiveInteger('idleTimeout', options.idleTimeout, 60_000, true);
  const transport = options.transport ?? new LocalTransport();
  if (!isTransport(transport)) {
    fail('transport', transport, 'a RiversideTransport (connect, publish, subscribe, unsubscribe, close)');
  }
  return Object.freeze({
    mode,
    port,
    host: options.host as string | undefined,
    path: resolvePath('path', options.path, '/'),
    codec: resolveCodec(options.codec),
    maxConnections: positiveInteger('maxConnections', options.maxConnections, 65_536),
    maxHandshakesPerSecond: positiveInteger('maxHandshakesPerSecond', options.maxHandshakesPerSecond, Infinity, true),
    maxConnectionAge: positiveInteger('maxConnectionAge', options.maxConnectionAge, Infinity, true),
    idleTimeout,
    reusePort,
    debug: booleanOption('debug', options.debug, false),
    transmissionLimit: Object.freeze(resolveTransmissionLimit(options.transmissionLimit)),
    tls,
    ws: Object.freeze(resolveWs(options.ws)),
    invalidMessage: oneOf('invalidMessage', options.invalidMessage, ['ignore', 'close'], 'ignore'),
    maxBackpressure: positiveInteger('maxBackpressure', options.maxBackpressure, 4 * ONE_MIB),
    slowConsumer: oneOf('slowConsumer', options.slowConsumer, ['close', 'drop'], 'close'),
    isOriginAllowed: resolveOrigins(options.allowedOrigins),
    subprotocols: resolveSubprotocols('subprotocols', options.subprotocols),
    router: (options.router as ResolvedRiversideOptions['router']) ?? null,
    shutdownTimeout: positiveInteger('shutdownTimeout', options.shutdownTimeout, 5000),
    handlerTimeout: positiveInteger('handlerTimeout', options.handlerTimeout, 30_000, true),
    maxQueuedMessages: positiveInteger('maxQueuedMessages', options.maxQueuedMessages, 10_000),
    maxChannelsPerSession: positiveInteger('maxChannelsPerSession', options.maxChannelsPerSession, 100),
    maxIdLength: positiveInteger('maxIdLength', options.maxIdLength, 256),
    handshakeTimeout: positiveInteger('handshakeTimeout', options.handshakeTimeout, 10_000),
    maxPendingSockets: positiveInteger('maxPendingSockets', options.maxPendingSockets, defaultMaxPendingSockets()),
    readForwardedFor: resolveTrustProxy(options.trustProxy),
    transport,
    metrics: resolveMetrics(options.metrics),
    bridge: resolveBridge(options.bridge, transport),
    ...resolvePresence(options),
    maxMetaSize: positiveInteger('maxMetaSize', options.maxMetaSize, 1024),
  });
}
