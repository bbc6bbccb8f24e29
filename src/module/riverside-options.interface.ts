import type { Type } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ServerOptions as WsServerOptions } from 'ws';
import type { Codec } from '../codec/codec.interface.js';
import type { RiversideTransport } from '../cluster/transport.interface.js';
import type { EnvRef } from './env.js';

/**
 * TLS for the standalone server: clients connect with `wss://`.
 * @publicApi
 */
export interface RiversideTlsOptions {
  /** Turns TLS on or off, e.g. from the environment. @default true */
  enabled?: boolean | EnvRef<boolean>;
  /** Certificate chain: a PEM string or a path to a PEM file. */
  cert: string | Buffer | EnvRef<string>;
  /** Private key: a PEM string or a path to a PEM file. */
  key: string | Buffer | EnvRef<string>;
  /** Passphrase of the private key, if it has one. */
  passphrase?: string;
  /** Extra CA certificates (PEM). */
  ca?: string | Buffer | Array<string | Buffer>;
}

/**
 * `ws` server options passed through (the analogue of Riverside's `cowboy_opts`). The options
 * that Riverside owns (`server`, `port`, `path`, `noServer`, `verifyClient`, `handleProtocols`,
 * `clientTracking`) are not accepted.
 * @publicApi
 */
export type RiversideWsOptions = Omit<
  WsServerOptions,
  'server' | 'port' | 'host' | 'path' | 'noServer' | 'verifyClient' | 'handleProtocols' | 'clientTracking' | 'backlog'
> & {
  /**
   * How long a close (idle timeout, a limit, `session.close()`, shutdown) waits for the client's
   * close frame, in ms, before the socket is dropped and @OnTerminate runs: a client that is gone
   * or no longer reads would otherwise hold its socket and connection slot this long. ws's own
   * option (ws >= 8.19), with Riverside's default. @default 5000 (ws's: 30000)
   */
  closeTimeout?: number;
};

/**
 * Riverside's fixed-window flood limit: the `capacity`-th frame within `duration` ms closes
 * the connection with 3001.
 * @publicApi
 */
export interface TransmissionLimit {
  /** Frames per window; the frame that reaches this count closes the connection. @default 50 */
  capacity: number;
  /** Window length in ms. @default 2000 */
  duration: number;
}

/**
 * Prometheus metrics through the optional peer `prom-client`.
 * @publicApi
 */
export interface RiversideMetricsOptions {
  /**
   * Path the metrics are served on: on the standalone server, on the Nest HTTP server with
   * `port: 'http'` (after the app's own routes, so an app's `/metrics` controller wins), or on
   * `metrics.port`. `false` to only register them in the registry. @default '/metrics'
   */
  path?: string | false;
  /**
   * A port of their own for the metrics (0 picks a free one), e.g. one the firewall keeps
   * internal; then the handlers' port answers the metrics path with 404. @default the handlers' server
   */
  port?: number;
  /** Interface the metrics port binds to, e.g. '127.0.0.1'. Only with `metrics.port`. @default all interfaces */
  host?: string;
  /** Prefix of every metric name. @default 'riverside_' */
  prefix?: string;
  /** The prom-client `Registry` to register in. @default prom-client's global `register` */
  registry?: unknown;
}

/**
 * Options of `RiversideModule.forRoot()` / `forRootAsync()`. Every option is validated once,
 * at boot; a bad value fails the boot with an error naming the option.
 * @publicApi
 */
export interface RiversideModuleOptions {
  /**
   * Port of the standalone server (0 picks a free one), or `'http'` to serve the handler
   * paths on the Nest HTTP server next to the app's controllers.
   * @default 3000
   */
  port?: number | string | 'http' | EnvRef<number | string>;
  /** Interface to bind the standalone server to. @default all interfaces */
  host?: string;
  /** Default path of handlers that do not name one. @default '/' */
  path?: string;
  /** Default codec of every handler: an instance or an injectable class. @default JsonCodec */
  codec?: Codec | Type<Codec>;
  /** Connections accepted at once (handshakes in flight included); past it, HTTP 503. @default 65536 */
  maxConnections?: number;
  /**
   * Handshakes admitted per second (per process); past it, HTTP 503 with a `Retry-After` that
   * spreads the refused clients over the next seconds. Keeps a reconnect storm (the clients of
   * a worker or node that died) from overloading the survivors. @default Infinity
   */
  maxHandshakesPerSecond?: number;
  /** A connection is closed with 3002 this many ms after @OnInit. @default Infinity */
  maxConnectionAge?: number;
  /** A connection that sends nothing (pings included) for this long is closed with 3003. `0` or `Infinity` disables it. @default 60000 */
  idleTimeout?: number;
  /** Sets SO_REUSEPORT so several processes can listen on one port (needs Node >= 22.12). @default false */
  reusePort?: boolean;
  /** Logs a debug line per connection event (Riverside's show_debug_logs). @default false */
  debug?: boolean;
  /** Per-connection flood limit. @default { capacity: 50, duration: 2000 } */
  transmissionLimit?: Partial<TransmissionLimit>;
  /** TLS for the standalone server. @default false */
  tls?: false | RiversideTlsOptions;
  /**
   * Options passed to the `ws` server. `maxPayload` defaults to 1 MiB (ws's own default is
   * 100 MiB), `closeTimeout` to 5000 ms (ws's own is 30000).
   */
  ws?: RiversideWsOptions;
  /** What to do with a frame of the wrong type or one the codec cannot decode. @default 'ignore' */
  invalidMessage?: 'ignore' | 'close';
  /**
   * Unsent bytes a socket may hold before it is treated as a slow consumer; also the inbound bytes
   * that may wait for a busy handler before the socket stops being read. @default 4194304 (4 MiB)
   */
  maxBackpressure?: number;
  /** What happens to a slow consumer: closed with 3004, or messages to it dropped. @default 'close' */
  slowConsumer?: 'close' | 'drop';
  /** Allowed `Origin` values (or a predicate); a browser handshake from elsewhere gets 403. @default any origin */
  allowedOrigins?: readonly string[] | ((origin: string) => boolean);
  /**
   * Subprotocols the handlers speak, in order of preference: the first of these that the client
   * offered is selected (unless @OnAuthenticate chooses). @default none
   */
  subprotocols?: readonly string[];
  /** Request listener for every non-WebSocket request of the standalone server; replaces `/health` and the 404. */
  router?: (req: IncomingMessage, res: ServerResponse) => void;
  /**
   * How long a handshake may take, in ms: the request headers must arrive within it (else Node
   * answers 408), and @OnAuthenticate must settle within it after them (else the client gets 503
   * and the slot is freed; a late result is discarded; checked every tenth of it, one timer for all
   * handshakes). A socket that sends nothing for this long
   * before its upgrade is closed. @default 10000
   */
  handshakeTimeout?: number;
  /**
   * TCP connections of the standalone server that are not WebSocket connections (yet): silent
   * sockets, HTTP keep-alive, handshakes whose request is not complete. Past it, a newcomer evicts
   * the oldest socket idle for 2 s (408), or is shed with 503 when none is. Counted in
   * `stats.shedSockets`. @default half the process's open-files limit (Linux), else 1024
   */
  maxPendingSockets?: number;
  /**
   * Which peers are proxies whose `X-Forwarded-For` is believed, as Express's `trust proxy`: a
   * hop count (`1`: the socket's peer is the one proxy), addresses or CIDR ranges of the proxies
   * (`['10.0.0.0/8']`, `'loopback'`, `'linklocal'`, `'uniquelocal'`), a predicate
   * `(address, hop) => boolean`, `true` (every hop) or `false` (none). `peer.forwardedFor` is
   * then the right-most untrusted address. Unset, `forwardedFor` is the left-most entry, which the
   * client controls. @default unset
   */
  trustProxy?: boolean | number | string | readonly string[] | ((address: string, hop: number) => boolean);
  /** How long shutdown waits for @OnTerminate callbacks before cutting sockets, in ms. @default 5000 */
  shutdownTimeout?: number;
  /**
   * How long a callback (@OnInit, @OnMessage, @OnInfo) still pending after its connection's
   * socket closed is waited for, in ms. Past it, @OnTerminate runs with
   * `{ kind: 'error', error: HandlerTimeoutError }`, the session is released, and the callback's
   * late result is discarded. During shutdown, `shutdownTimeout` bounds it too. `Infinity` waits
   * forever. @default 30000
   */
  handlerTimeout?: number;
  /**
   * Tasks (frames, infos, deliveries held during @OnInit) that may wait for one busy
   * connection. Past it, frames stop being read from the socket; infos and held deliveries
   * meet the `slowConsumer` policy (3004, or dropped and counted). Held deliveries are also
   * bounded by `maxBackpressure` bytes. @default 10000
   */
  maxQueuedMessages?: number;
  /**
   * Channels one session may be in; a further `join()` throws a `RiversideError` with code
   * `RIVERSIDE_ERR_TOO_MANY_CHANNELS`. @default 100
   */
  maxChannelsPerSession?: number;
  /**
   * Longest user, session and channel id, in UTF-8 bytes. A longer channel makes `join()`
   * throw a `RiversideError` with code `RIVERSIDE_ERR_ID_TOO_LONG`; a longer `userId` or
   * `sessionId` from @OnAuthenticate refuses the handshake with 500 (logged). @default 256
   */
  maxIdLength?: number;
  /** Prometheus metrics (needs `prom-client`): `true` for the defaults. @default false */
  metrics?: boolean | RiversideMetricsOptions;
  /**
   * Listen on the transport's `bridge` topic for `{ "recipients": [userId, ...], "data": any }`
   * envelopes from other services: `data` is delivered to every session of each recipient.
   * Needs a cluster transport. @default false
   */
  bridge?: boolean;
  /** Cluster transport carrying deliveries between nodes. @default new LocalTransport() */
  transport?: RiversideTransport;
  /**
   * Cluster presence ({@link PresenceService}): every node keeps a copy of every other node's
   * sessions and channel memberships, told each change and a heartbeat on the transport. `false`
   * turns it off: no presence messages, heartbeats or copies (each node holds only its own
   * sessions), and the PresenceService's cluster-wide queries and `on()` throw a
   * `PresenceDisabledError`; `localMembers()` and `localCount()` keep answering for this node.
   * Deliveries do not use presence. Turn it off on large clusters that do not query it: the
   * copies cost every node memory for every session of the cluster (docs/scaling.md). @default true
   */
  presence?: boolean;
  /**
   * How often each node tells the others it is alive (and the number of its latest presence
   * change), in ms. A node silent for 3 heartbeats is reported in presence answers'
   * `missingNodes`. Only used with a cluster transport. @default 1000
   */
  presenceHeartbeat?: number;
  /**
   * How long a node may stay silent before its sessions are removed from every other node's
   * presence (and leave events emitted for them), in ms: removal happens within
   * `presenceTimeout + presenceHeartbeat`. At least 3 × `presenceHeartbeat`. @default 10000
   */
  presenceTimeout?: number;
  /**
   * Largest channel meta (`session.join(channel, meta)`), in bytes of JSON: it is replicated to
   * every node. A larger or non-JSON meta makes the join throw a `PresenceMetaError`. @default 1024
   */
  maxMetaSize?: number;
}
