import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { RiversideStats } from '../stats/riverside-stats.js';
import type { RefusalLog } from './refusal-log.js';

/** Bytes one client may pipeline behind its upgrade request before the 101. */
export const MAX_EARLY_BYTES_PER_SOCKET = 8 * 1024;
/** Bytes all handshakes together may hold before their 101. */
export const PRE_UPGRADE_BYTE_BUDGET = 16 * 1024 * 1024;
/** A pending socket this old (ms) with no request in progress may be evicted for a newcomer. */
export const EVICTABLE_AFTER = 2000;
/** Idle keep-alive HTTP connections are closed after this long (ms). */
export const KEEP_ALIVE_TIMEOUT = 5000;
/** Requests one keep-alive HTTP connection may carry. */
export const MAX_REQUESTS_PER_SOCKET = 1000;

type PendingSocket = Socket & { _httpMessage?: unknown };

/**
 * The default of `maxPendingSockets`: half the process's soft limit of open files (Linux), so that
 * a flood of silent sockets leaves the other half to established connections; 1024 elsewhere.
 */
export function defaultMaxPendingSockets(limitsFile = '/proc/self/limits'): number {
  try {
    const line = readFileSync(limitsFile, 'latin1')
      .split('\n')
      .find((candidate) => candidate.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    if (soft === 'unlimited') return 32_768;
    const limit = Number(soft);
    if (Number.isInteger(limit) && limit > 0) return Math.max(64, Math.floor(limit / 2));
  } catch {
    // Not Linux: fall through to a conservative default.
  }
  return 1024;
}

/**
 * Node's symbol for the Timeout behind `socket.setTimeout()`. `setTimeout(0)` stops that timer
 * but leaves the object on the socket, where it would stay for the WebSocket's whole life.
 */
let kSocketTimeout: symbol | undefined;

/**
 * Stops the socket's inactivity timer, if a served HTTP request armed one, and lets its Timeout
 * object go. Most sockets upgrade on their first request and never had one: they are left as
 * they are (ws clears the timeout of its socket anyway).
 */
function releaseInactivityTimer(socket: Socket): void {
  kSocketTimeout ??= Object.getOwnPropertySymbols(socket).find((symbol) => symbol.description === 'timeout');
  if (kSocketTimeout === undefined) return void socket.setTimeout(0);
  const slots = socket as unknown as Record<symbol, unknown>;
  if (slots[kSocketTimeout] === null || slots[kSocketTimeout] === undefined) return;
  socket.setTimeout(0);
  slots[kSocketTimeout] = null;
}

/**
 * What a client can make the standalone server hold before its WebSocket exists: TCP connections
 * that are not (yet) upgraded, bounded by `maxPendingSockets` (a newcomer evicts a stale one, or
 * is shed with 503 when every pending socket is fresh), inactivity and header timeouts, and the
 * bytes pipelined behind upgrade requests (per socket and in total).
 */
export class PreUpgradeGuard {
  /**
   * Each pending socket and when it arrived, in arrival order, so that the first evictable one is
   * found from the front. Kept here rather than on the socket: a property added to a socket would
   * stay for the whole life of its WebSocket.
   */
  private readonly pending = new Map<PendingSocket, number>();
  /** The 'close' listener of every pending socket: one function per guard, not one per socket. */
  private readonly forgetOnClose: (this: PendingSocket) => void;

  constructor(
    private readonly maxPendingSockets: number,
    private readonly handshakeTimeout: number,
    private readonly stats: RiversideStats,
    private readonly refusals: RefusalLog,
    /** False for TLS: a socket shed before its TLS handshake can only be closed, not answered. */
    private readonly plaintext: boolean,
    private readonly now: () => number = Date.now,
  ) {
    const guard = this;
    this.forgetOnClose = function (this: PendingSocket) {
      guard.forget(this);
    };
  }

  /** Options for `http.createServer` / `https.createServer`. */
  serverOptions(): { headersTimeout: number; requestTimeout: number; keepAliveTimeout: number; connectionsCheckingInterval: number } {
    return {
      // A request must have sent its headers within handshakeTimeout (Node answers 408).
      headersTimeout: this.handshakeTimeout,
      requestTimeout: Math.max(this.handshakeTimeout, 30_000),
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT,
      // Node checks the two timeouts above only this often (30 s by default).
      connectionsCheckingInterval: Math.min(1000, this.handshakeTimeout),
    };
  }

  /**
   * Bounds the standalone server's sockets until they upgrade.
   *
   * A socket that never completes its request headers (or never sends a byte) is answered 408
   * and closed by Node's header check (`headersTimeout`, run every `connectionsCheckingInterval`),
   * so the per-socket inactivity timer of `server.timeout` is not needed for that: arming one on
   * every accepted socket (a Timeout, then its release at the upgrade) cost every WebSocket
   * handshake ~2% of its CPU. The timer is armed only on sockets that serve a plain HTTP
   * request, where it bounds a client that stops reading its response.
   */
  attach(server: Server): void {
    server.timeout = 0;
    server.maxRequestsPerSocket = MAX_REQUESTS_PER_SOCKET;
    server.on('connection', this.onConnection);
    server.prependListener('request', this.armInactivityTimer);
  }

  detach(server: Server): void {
    server.off('connection', this.onConnection);
    server.off('request', this.armInactivityTimer);
  }

  /** The upgrade request is complete: from now on maxConnections and handshakeTimeout govern the socket. */
  upgraded(socket: Duplex): void {
    const raw = ((socket as { _parent?: Duplex })._parent ?? socket) as PendingSocket;
    this.forget(raw);
    // Node's inactivity timeout must not cut a socket that Riverside (or ws) now owns.
    if (typeof (socket as Socket).setTimeout === 'function') releaseInactivityTimer(socket as Socket);
  }

  /** @internal */
  forget(socket: PendingSocket): void {
    if (this.pending.delete(socket)) socket.off('close', this.forgetOnClose);
  }

  /** Takes `bytes` from the pre-upgrade budget; false (nothing taken) when it would overflow. */
  takeEarlyBytes(bytes: number): boolean {
    if (this.stats.preUpgradeBytes + bytes > PRE_UPGRADE_BYTE_BUDGET) return false;
    this.stats.preUpgradeBytes += bytes;
    return true;
  }

  giveBackEarlyBytes(bytes: number): void {
    this.stats.preUpgradeBytes -= bytes;
  }

  /** Sockets counted against maxPendingSockets right now. */
  get pendingSockets(): number {
    return this.pending.size;
  }

  private readonly armInactivityTimer = (req: IncomingMessage): void => {
    if (req.socket.timeout !== this.handshakeTimeout) req.socket.setTimeout(this.handshakeTimeout);
  };

  private readonly onConnection = (socket: PendingSocket): void => {
    if (this.pending.size >= this.maxPendingSockets && !this.evictStale()) {
      this.shed(socket, 503);
      this.refusals.warn(
        'shed',
        `Shed a new TCP connection with 503: maxPendingSockets (${this.maxPendingSockets}) sockets are waiting for a request`,
      );
      return;
    }
    this.pending.set(socket, this.now());
    socket.on('close', this.forgetOnClose);
  };

  /** Closes the oldest pending socket if it has waited long enough with no request in progress. */
  private evictStale(): boolean {
    const threshold = this.now() - EVICTABLE_AFTER;
    for (const [socket, since] of this.pending) {
      if (since > threshold) return false;
      if (socket._httpMessage) continue;
      this.forget(socket);
      this.shed(socket, 408);
      this.refusals.warn(
        'evict',
        `Closed an idle TCP connection with 408 to admit a new one: maxPendingSockets (${this.maxPendingSockets}) reached`,
      );
      return true;
    }
    return false;
  }

  private shed(socket: Socket, status: 408 | 503): void {
    this.stats.shedSockets++;
    const text = status === 408 ? 'Request Timeout' : 'Service Unavailable';
    // Written straight to the socket: Node's HTTP machinery has not read a byte of it.
    if (this.plaintext && socket.writable) {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${text.length}\r\n\r\n${text}`);
    }
    socket.destroySoon();
    // A peer that never reads must not keep the descriptor: the point is to free it.
    setTimeout(() => socket.destroy(), 1000).unref();
  }
}
