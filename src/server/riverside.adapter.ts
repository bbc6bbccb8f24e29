import type { INestApplicationContext } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import { WebSocketServer } from 'ws';
import type { RiversideWsOptions } from '../module/riverside-options.interface.js';
import { RiversideServer } from './riverside.server.js';

type GatewayOptions = Record<string, unknown> & { namespace?: string; server?: unknown; path?: string };

/**
 * `@nestjs/platform-ws`'s adapter, made to live beside Riverside handlers:
 * `app.useWebSocketAdapter(new RiversideAdapter(app))`.
 *
 * Plain `@WebSocketGateway` gateways keep their `{ event, data }` protocol. A gateway on the
 * port Riverside serves (its standalone port, or the Nest HTTP server with `port: 'http'`)
 * is routed by Riverside's single upgrade listener, so both share one server instead of
 * fighting over it. Such a gateway gets Riverside's Origin check (`allowedOrigins`), shares
 * `maxConnections`, defaults to its `ws.maxPayload` and `ws.closeTimeout`, and its clients are closed with 1001 at
 * shutdown; other gateways behave exactly as under WsAdapter.
 * @publicApi
 */
export class RiversideAdapter extends WsAdapter {
  private riverside: RiversideServer | null | undefined;

  constructor(private readonly app?: INestApplicationContext) {
    super(app);
  }

  override create(port: number, options: GatewayOptions = {}): unknown {
    const riverside = this.findRiversideServer();
    const { server, path, namespace, ...wsOptions } = options;
    if (riverside === null || server !== undefined || namespace !== undefined || !riverside.servesPort(port)) {
      return super.create(port, options);
    }
    // Riverside's maxPayload and closeTimeout unless the gateway sets its own: ws's defaults (100
    // MiB, an easy DoS; 30 s holding a vanished client's socket after a close) are not the server's.
    const { maxPayload, closeTimeout } = riverside.options.ws;
    const serverOptions: RiversideWsOptions = { maxPayload, closeTimeout, ...wsOptions };
    const wsServer = this.bindErrorHandler(new WebSocketServer({ ...serverOptions, noServer: true }));
    riverside.addGateway(path ?? '/', wsServer);
    return wsServer;
  }

  private findRiversideServer(): RiversideServer | null {
    if (this.riverside !== undefined) return this.riverside;
    try {
      this.riverside = this.app?.get(RiversideServer, { strict: false }) ?? null;
    } catch {
      this.riverside = null;
    }
    return this.riverside;
  }
}
