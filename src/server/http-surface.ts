import type { HttpServer, Logger } from '@nestjs/common';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ResolvedRiversideOptions } from '../module/riverside-options.resolver.js';
import type { RiversideMetrics } from '../stats/riverside-metrics.js';
import { respond, splitTarget } from './http-responses.js';

/** What the HTTP surface needs to know about the WebSocket paths. */
export interface WebSocketPaths {
  /** Whether a handler or a gateway serves `path`. */
  servesWebSocket(path: string): boolean;
}

/**
 * The plain-HTTP answers of Riverside: 426 on WebSocket paths, `/health`, the metrics path, the
 * `router` option and 404 on the standalone server; the 426 routes and the metrics route on the
 * Nest HTTP server with `port: 'http'`; the metrics on a port of their own with `metrics.port`.
 */
export class HttpSurface {
  private metricsServer: Server | null = null;

  constructor(
    private readonly options: ResolvedRiversideOptions,
    private readonly paths: WebSocketPaths,
    private readonly metrics: RiversideMetrics,
    private readonly logger: Logger,
  ) {}

  /** The metrics path served beside the handlers (null with metrics.port or without metrics). */
  private get sharedMetricsPath(): string | null {
    return this.options.metrics?.port === null ? this.metrics.path : null;
  }

  /** Request listener of the standalone server. */
  readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const { path } = splitTarget(req);
    if (this.paths.servesWebSocket(path)) return respond(res, 426, { Upgrade: 'websocket', Connection: 'Upgrade' });
    if (this.options.router !== null) {
      try {
        this.options.router(req, res);
      } catch (error) {
        const cause = error instanceof Error ? error : new Error(String(error));
        this.logger.error(`The router option threw: ${cause.message}`, cause.stack);
        if (!res.headersSent) respond(res, 500);
        else res.destroy();
      }
      return;
    }
    if (path === this.sharedMetricsPath && req.method === 'GET') return this.serveMetrics(res);
    if (path === '/health' && (req.method === 'GET' || req.method === 'HEAD')) return respond(res, 200, {}, 'OK');
    respond(res, 404);
  };

  /**
   * With `port: 'http'`: a plain GET on a handler path gets 426 as on the standalone server, and
   * the metrics path serves the metrics. Routes added now land after the app's controllers (an
   * app's own route wins) and before Nest's 404 handler.
   */
  registerNestRoutes(httpAdapter: HttpServer, handlerPaths: Iterable<string>): void {
    for (const path of handlerPaths) {
      this.tryRoute(path, () =>
        httpAdapter.get(path, (_req: unknown, res: unknown) => {
          httpAdapter.setHeader(res, 'Upgrade', 'websocket');
          httpAdapter.setHeader(res, 'Connection', 'Upgrade');
          httpAdapter.reply(res, 'Upgrade Required', 426);
        }),
      );
    }
    const metricsPath = this.options.metrics?.port === null ? this.options.metrics.path : null;
    if (metricsPath === null) return;
    this.tryRoute(metricsPath, () =>
      httpAdapter.get(metricsPath, (_req: unknown, res: unknown) => {
        this.metrics.render().then(
          ({ contentType, body }) => {
            httpAdapter.setHeader(res, 'Content-Type', contentType);
            httpAdapter.setHeader(res, 'Cache-Control', 'no-store');
            // Adapters JSON-encode objects: a string body goes out as it is.
            httpAdapter.reply(res, body, 200);
          },
          (error: unknown) => {
            this.logger.error(`Rendering metrics failed: ${(error as Error).message}`);
            httpAdapter.reply(res, 'Internal Server Error', 500);
          },
        );
      }),
    );
  }

  /** With `metrics.port`: a server that answers only the metrics path (and 404). */
  async listenMetrics(): Promise<void> {
    const config = this.options.metrics;
    if (config === null || config.port === null || this.metrics.path === null) return;
    const server = createServer((req, res) => {
      if (splitTarget(req).path === this.metrics.path && (req.method === 'GET' || req.method === 'HEAD')) return this.serveMetrics(res);
      respond(res, 404);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: config.port, host: config.host }, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((error: NodeJS.ErrnoException) => {
      throw new Error(
        `RiversideModule could not listen on metrics.port ${config.port}: ${error.code ?? error.message}. Choose another metrics.port.`,
      );
    });
    server.on('error', (error) => this.logger.error(`Metrics server error: ${error.message}`));
    this.metricsServer = server;
  }

  /** The bound address of the metrics port, if any. */
  metricsAddress(): { port: number; address: string } | null {
    const address = this.metricsServer?.address();
    return address !== null && address !== undefined && typeof address !== 'string' ? address : null;
  }

  async closeMetrics(): Promise<void> {
    const server = this.metricsServer;
    this.metricsServer = null;
    if (server === null) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private serveMetrics(res: ServerResponse): void {
    this.metrics.render().then(
      ({ contentType, body }) => respond(res, 200, { 'Content-Type': contentType }, body),
      (error: unknown) => {
        this.logger.error(`Rendering metrics failed: ${(error as Error).message}`);
        respond(res, 500);
      },
    );
  }

  private tryRoute(path: string, add: () => void): void {
    try {
      add();
    } catch (error) {
      // Some HTTP adapters refuse routes once started; the upgrade still works without it.
      this.logger.debug(`No route for ${path} on the Nest HTTP server: ${(error as Error).message}`);
    }
  }
}
