import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleInit,
  Optional,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { Connection, type ConnectionHost, type ConnectionIdentity } from '../connection/connection.js';
import { ConnectionSweep } from '../connection/connection-sweep.js';
import { turnNow } from '../event-loop-turn.js';
import { PresenceTracker } from '../cluster/presence/presence.tracker.js';
import { ClusterRelay } from '../cluster/cluster-relay.js';
import { SessionRegistry } from '../delivery/session-registry.js';
import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import type { HandlerDefinition } from '../handler/handler-definition.js';
import { HandlerExplorer } from '../handler/handler.explorer.js';
import type { ResolvedRiversideOptions } from '../module/riverside-options.resolver.js';
import { RIVERSIDE_RESOLVED_OPTIONS } from '../riverside.constants.js';
import { RiversideMetrics } from '../stats/riverside-metrics.js';
import { RiversideStats } from '../stats/riverside-stats.js';
import { HandshakeDeadlines } from './handshake-deadlines.js';
import { GatewayAdmission, type GatewayHost, normalizeGatewayPath } from './gateway-admission.js';
import { type HandshakeHost, kSelectedProtocol, performHandshake } from './handshake.js';
import { HandshakeAdmission } from './handshake-admission.js';
import { rejectUpgrade, splitTarget } from './http-responses.js';
import { HttpSurface } from './http-surface.js';
import { PreUpgradeGuard } from './pre-upgrade-guard.js';
import { RefusalLog } from './refusal-log.js';
import { explainPortCollision } from './port-collision.js';
import { createStandaloneServer, listenStandalone, logServerErrors } from './standalone-server.js';

// Lifecycle of the server as a whole; close() is idempotent.
const IDLE = 0;
const RUNNING = 1;
const CLOSING = 2;
const CLOSED = 3;

function selectProtocol(_offered: Set<string>, req: IncomingMessage): string | false {
  return (req as unknown as Record<symbol, string | null>)[kSelectedProtocol] ?? false;
}

/**
 * Serves the handler paths: its own HTTP(S) server on `port` (with `/health`), or the Nest
 * HTTP server with `port: 'http'`. Inject it to learn the bound address in tests.
 * @publicApi
 */
@Injectable()
export class RiversideServer
  implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown, ConnectionHost, HandshakeHost, GatewayHost
{
  /** @internal */
  readonly logger = new Logger('Riverside');
  /** @internal */
  readonly wss: WebSocketServer;
  private httpServer: Server | null = null;
  private ownsHttpServer = false;
  private readonly gateways = new GatewayAdmission(this);
  private phase = IDLE;
  private openCount = 0;
  /** Accepted connections whose @OnTerminate has not run yet (a closed one may await its handler). */
  private unterminated = 0;
  private inFlight = 0;
  /** @internal */
  readonly handshakes = new Set<Duplex>();
  /** @internal */
  readonly refusals = new RefusalLog(this.logger);
  /** @internal */
  readonly deadlines: HandshakeDeadlines;
  /** @internal */
  readonly guard: PreUpgradeGuard;
  private readonly surface: HttpSurface;
  private readonly sweep: ConnectionSweep;
  private readonly admission: HandshakeAdmission | null;
  private readonly pendingTerminations = new Set<Promise<unknown>>();
  private drained: (() => void) | null = null;
  private closing: Promise<void> | null = null;

  constructor(
    /** @internal */
    @Inject(RIVERSIDE_RESOLVED_OPTIONS) readonly options: ResolvedRiversideOptions,
    private readonly explorer: HandlerExplorer,
    /** @internal */
    readonly registry: SessionRegistry,
    /** @internal */
    readonly stats: RiversideStats,
    private readonly metrics: RiversideMetrics,
    private readonly relay: ClusterRelay,
    private readonly presence: PresenceTracker,
    @Optional() private readonly httpAdapterHost?: HttpAdapterHost,
  ) {
    this.wss = new WebSocketServer({
      ...options.ws,
      noServer: true,
      clientTracking: false,
      handleProtocols: selectProtocol,
    });
    this.admission = Number.isFinite(options.maxHandshakesPerSecond) ? new HandshakeAdmission(options.maxHandshakesPerSecond) : null;
    this.deadlines = new HandshakeDeadlines(options.handshakeTimeout);
    this.guard = new PreUpgradeGuard(options.maxPendingSockets, options.handshakeTimeout, stats, this.refusals, !options.tls);
    this.surface = new HttpSurface(
      options,
      { servesWebSocket: (path) => this.explorer.handlers.has(path) || this.gateways.has(path) },
      metrics,
      this.logger,
    );
    this.sweep = new ConnectionSweep(registry.connections, options, () => this.now());
  }

  /** The bound address of the standalone server (or of the Nest HTTP server once it listens). */
  address(): AddressInfo {
    const address = this.httpServer?.address();
    if (address === null || address === undefined || typeof address === 'string') {
      throw new Error('The Riverside server is not listening (yet): call this after app.init() / app.listen().');
    }
    return address;
  }

  /** Whether new connections are accepted: after bootstrap and before shutdown. */
  get isAccepting(): boolean {
    return this.phase === RUNNING;
  }

  /** `ws://127.0.0.1:<port><path>` (`wss://` with TLS), for tests and logs. */
  url(path = this.options.path): string {
    const { port, address } = this.address();
    // A wildcard bind is reachable on loopback; a specific one only on itself.
    const host = address === '0.0.0.0' || address === '::' ? '127.0.0.1' : address.includes(':') ? `[${address}]` : address;
    return `${this.options.tls ? 'wss' : 'ws'}://${host}:${port}${path}`;
  }

  /** With `port: 'http'`, the 426 routes of the handler paths and the metrics route join the app's routes. */
  async onModuleInit(): Promise<void> {
    const httpAdapter = this.httpAdapterHost?.httpAdapter;
    if (this.options.mode !== 'http' || !httpAdapter) return;
    this.surface.registerNestRoutes(httpAdapter, (await this.explorer.explore()).keys());
  }

  /** The bound address of the metrics port (`metrics.port`), or null. */
  metricsAddress(): AddressInfo | null {
    return this.surface.metricsAddress() as AddressInfo | null;
  }

  async onApplicationBootstrap(): Promise<void> {
    if (this.phase !== IDLE) return;
    // Nest creates gateways before onModuleInit discovers the handlers: the clash is caught here.
    for (const path of this.gateways.paths) {
      if (this.explorer.handlers.has(path)) throw this.pathClash(path, 'a Riverside handler');
    }
    this.phase = RUNNING;
    await this.options.transport.connect();
    this.relay.start();
    await this.presence.start();
    if (this.options.mode === 'http') this.attachToNestHttpServer();
    else {
      await this.listenStandalone();
      explainPortCollision(this.httpAdapterHost?.httpAdapter?.getHttpServer(), this.address().port);
    }
    await this.surface.listenMetrics();
    this.sweep.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.close();
  }

  /**
   * Stops accepting, closes every connection with 1001, waits (up to `shutdownTimeout`) for
   * @OnTerminate callbacks, then closes the server and the transport. Idempotent.
   */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  // ---- gateways (RiversideAdapter) --------------------------------------------------------

  /** @internal Whether a gateway on this port is served by our upgrade listener. */
  servesPort(port: number): boolean {
    return this.options.mode === 'http' ? port === 0 : port !== 0 && port === this.options.port;
  }

  /** @internal */
  addGateway(path: string, server: WebSocketServer): void {
    const normalized = normalizeGatewayPath(path);
    if (!this.gateways.add(normalized, server)) throw this.pathClash(normalized, 'another @WebSocketGateway');
  }

  private pathClash(path: string, other: string): InvalidOptionsError {
    const where = this.options.mode === 'http' ? 'the Nest HTTP server' : `port ${this.options.port}`;
    return new InvalidOptionsError(
      'path',
      `A @WebSocketGateway and ${other} both claim path "${path}" on ${where}. Give the gateway its own path.`,
    );
  }

  // ---- HandshakeHost / ConnectionHost ----------------------------------------------------

  /** @internal */
  reserveSlot(): boolean {
    if (this.phase !== RUNNING || !this.hasRoom()) return false;
    this.inFlight++;
    return true;
  }

  /** Handlers' connections, gateways' clients and handshakes in flight share maxConnections. */
  private hasRoom(): boolean {
    return this.openCount + this.inFlight + this.gateways.clientCount < this.options.maxConnections;
  }

  /** @internal */
  releaseSlot(): void {
    this.inFlight--;
  }

  /** @internal */
  accept(ws: WebSocket, handler: HandlerDefinition, identity: ConnectionIdentity): void {
    this.inFlight--;
    this.openCount++;
    this.unterminated++;
    this.stats.currentConnections++;
    this.stats.totalConnections++;
    const connection = new Connection(ws, handler, this, identity);
    this.registry.add(connection);
    if (this.phase !== RUNNING) connection.closeFor('shutdown');
    // In a cluster, @OnInit waits until other nodes can reach this session (frames queue meanwhile).
    const subscribed = this.relay.enabled ? this.relay.subscribedFor(identity.userId) : null;
    if (subscribed === null) connection.start();
    else void subscribed.then(() => connection.start());
  }

  /** @internal */
  now(): number {
    return turnNow();
  }

  /** @internal */
  connectionClosed(): void {
    this.openCount--;
    this.stats.currentConnections--;
  }

  /** @internal */
  connectionTerminated(): void {
    this.unterminated--;
    if (this.unterminated === 0) this.drained?.();
  }

  /** @internal */
  trackTermination(pending: Promise<unknown>): void {
    this.pendingTerminations.add(pending);
    void pending.finally(() => this.pendingTerminations.delete(pending));
  }

  // ---- HTTP ------------------------------------------------------------------------------

  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (this.ownsHttpServer) this.guard.upgraded(socket);
    const { path, query } = splitTarget(req);
    const handler = this.explorer.handlers.get(path);
    if (handler !== undefined) {
      if (this.phase !== RUNNING) return rejectUpgrade(socket, 503);
      const retryAfter = this.admission?.admit(this.now()) ?? 0;
      if (retryAfter > 0) {
        this.stats.countRejection(503);
        return rejectUpgrade(socket, 503, { 'Retry-After': String(retryAfter) });
      }
      let pending: Promise<void> | void;
      try {
        pending = performHandshake(this, handler, req, socket, head, path, query);
      } catch (error) {
        return this.handshakeFailed(path, socket, error);
      }
      if (pending) pending.catch((error: unknown) => this.handshakeFailed(path, socket, error));
      return;
    }
    const gateway = this.gateways.get(path);
    if (gateway !== undefined) return this.gateways.upgrade(gateway, req, socket, head);
    // On a shared server another upgrade listener (socket.io, a second adapter) may own the path.
    if (!this.ownsHttpServer && (this.httpServer?.listenerCount('upgrade') ?? 0) > 1) return;
    rejectUpgrade(socket, 404);
  };

  private handshakeFailed(path: string, socket: Duplex, error: unknown): void {
    const cause = error instanceof Error ? error : new Error(String(error));
    this.logger.error(`Handshake on ${path} failed: ${cause.message}`, cause.stack);
    rejectUpgrade(socket, 500);
  }

  private async listenStandalone(): Promise<void> {
    const server = createStandaloneServer(this.options, this.guard.serverOptions(), this.surface.onRequest);
    this.guard.attach(server);
    server.on('upgrade', this.onUpgrade);
    this.httpServer = server;
    this.ownsHttpServer = true;
    await listenStandalone(server, this.options);
    logServerErrors(server, this.refusals, this.logger);
    const { port: bound } = this.address();
    this.logger.log(
      `Listening on ${this.options.tls ? 'wss' : 'ws'}://${this.options.host ?? '0.0.0.0'}:${bound} for ${[...this.explorer.handlers.keys()].join(', ') || 'no handler'}`,
    );
  }

  private attachToNestHttpServer(): void {
    const server = this.httpAdapterHost?.httpAdapter?.getHttpServer() as Server | undefined;
    if (server === undefined) {
      throw new InvalidOptionsError(
        'port',
        "RiversideModule: port 'http' shares the Nest HTTP server, but this application has none " +
          '(NestFactory.createApplicationContext). Use a port number, or NestFactory.create().',
      );
    }
    server.on('upgrade', this.onUpgrade);
    this.httpServer = server;
  }

  // ---- shutdown --------------------------------------------------------------------------

  private async shutdown(): Promise<void> {
    if (this.phase === CLOSED) return;
    this.phase = CLOSING;
    // The sweep keeps running: a callback hung past handlerTimeout is released during shutdown too.
    // A handshake still awaiting @OnAuthenticate would hold server.close() until auth settles.
    for (const socket of this.handshakes) socket.destroy();
    this.deadlines.stop();
    const server = this.httpServer;
    const serverClosed =
      server !== null && this.ownsHttpServer
        ? new Promise<void>((resolve) => server.close(() => resolve()))
        : Promise.resolve();
    const deadline = Date.now() + this.options.shutdownTimeout;
    for (const connection of this.registry.connections) connection.closeFor('shutdown');
    const gatewaysClosed = this.gateways.closeAll((work) => this.within(deadline, work));
    // Until every connection is terminated: a closed socket whose async handler is still running
    // gets its @OnTerminate only when the handler settles.
    if (this.unterminated > 0) {
      await this.within(deadline, new Promise<void>((resolve) => (this.drained = resolve)));
      if (this.openCount > 0) {
        this.logger.warn(`${this.openCount} connection(s) did not close within shutdownTimeout; cutting them`);
        for (const connection of [...this.registry.connections]) connection.ws.terminate();
      }
      // A callback still pending now is given up on: every @OnTerminate runs before close() resolves.
      const stillBusy = [...this.registry.connections].filter((connection) => !connection.isTerminated);
      if (stillBusy.length > 0) {
        this.logger.warn(`${stillBusy.length} connection(s) still had a callback pending after shutdownTimeout; releasing them without it`);
        for (const connection of stillBusy) connection.abandonCallback(false);
      }
    }
    this.sweep.stop();
    await this.within(deadline, Promise.allSettled([...this.pendingTerminations]));
    await gatewaysClosed;
    if (this.pendingTerminations.size > 0) {
      this.logger.warn(`${this.pendingTerminations.size} @OnTerminate callback(s) still running after shutdownTimeout`);
    }
    if (server !== null) {
      server.off('upgrade', this.onUpgrade);
      if (this.ownsHttpServer) {
        server.closeAllConnections();
        await serverClosed;
      }
    }
    this.wss.close();
    // Every local session is gone (its leaves published): the other nodes drop this one at once.
    await this.presence.stop();
    if (this.ownsHttpServer && server !== null) this.guard.detach(server);
    await this.surface.closeMetrics();
    this.refusals.flush();
    try {
      await this.options.transport.close();
    } catch (error) {
      this.logger.error(`Transport close failed: ${(error as Error).message}`);
    }
    this.phase = CLOSED;
  }

  private async within(deadline: number, work: Promise<unknown>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
    });
    await Promise.race([work, timeout]);
    clearTimeout(timer);
  }
}
