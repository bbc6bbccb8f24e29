import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import type { ResolvedRiversideOptions } from '../module/riverside-options.resolver.js';
import type { RiversideStats } from '../stats/riverside-stats.js';
import { originOf } from './handshake.js';
import { rejectUpgrade } from './http-responses.js';
import type { RefusalLog } from './refusal-log.js';
import { checkUpgrade, UpgradeRefusal } from './upgrade-conformance.js';

/** What gateway admission needs from the server. */
export interface GatewayHost {
  readonly options: ResolvedRiversideOptions;
  readonly stats: RiversideStats;
  readonly refusals: RefusalLog;
  readonly isAccepting: boolean;
  /** Reserves a slot of maxConnections; false when none is left or shutdown began. */
  reserveSlot(): boolean;
  releaseSlot(): void;
}

/** Nest's WsAdapter serves @WebSocketGateway({ path: 'gw' }) on '/gw': so do we. */
export function normalizeGatewayPath(path: string): string {
  const absolute = path.startsWith('/') ? path : `/${path}`;
  return absolute.length > 1 && absolute.endsWith('/') ? absolute.slice(0, -1) : absolute;
}

/**
 * The `@WebSocketGateway` gateways that RiversideAdapter routes through Riverside's server. They
 * are admitted as handlers are (conformance, Origin, the shared maxConnections, 503 once shutdown
 * began) and their clients are closed with 1001 at shutdown; what they do with frames stays Nest's.
 */
export class GatewayAdmission {
  private readonly gateways = new Map<string, WebSocketServer>();
  private readonly clients = new Set<WebSocket>();

  constructor(private readonly host: GatewayHost) {}

  /** Open gateway clients, which count against maxConnections. */
  get clientCount(): number {
    return this.clients.size;
  }

  get paths(): IterableIterator<string> {
    return this.gateways.keys();
  }

  get(path: string): WebSocketServer | undefined {
    return this.gateways.get(path);
  }

  has(path: string): boolean {
    return this.gateways.has(path);
  }

  /** Registers a gateway on a path of normalizeGatewayPath(); false when another gateway has it. */
  add(path: string, server: WebSocketServer): boolean {
    if (this.gateways.has(path)) return false;
    this.gateways.set(path, server);
    return true;
  }

  upgrade(gateway: WebSocketServer, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const refusal = this.admit(gateway, req);
    if (refusal !== null) {
      this.host.stats.countRejection(refusal.status);
      return rejectUpgrade(socket, refusal.status, refusal.headers);
    }
    let reserved = true;
    const release = () => {
      if (reserved) this.host.releaseSlot();
      reserved = false;
    };
    socket.once('close', release);
    gateway.handleUpgrade(req, socket, head, (ws) => {
      socket.off('close', release);
      release();
      this.clients.add(ws);
      ws.once('close', () => this.clients.delete(ws));
      if (!this.host.isAccepting) ws.close(1001, 'server shutting down');
      gateway.emit('connection', ws, req);
    });
  }

  /** Closes every gateway client with 1001, waits for them until `within` settles, then cuts the rest. */
  async closeAll(within: (work: Promise<unknown>) => Promise<void>): Promise<void> {
    const clients = [...this.clients];
    for (const client of clients) client.close(1001, 'server shutting down');
    if (clients.length === 0) return;
    await within(Promise.all(clients.map((client) => once(client, 'close'))));
    for (const client of clients) client.terminate();
  }

  private admit(gateway: WebSocketServer, req: IncomingMessage): UpgradeRefusal | null {
    if (!this.host.isAccepting) return new UpgradeRefusal(503);
    const upgrade = checkUpgrade(req, gateway.options);
    if (upgrade instanceof UpgradeRefusal) return upgrade;
    const { isOriginAllowed, maxConnections } = this.host.options;
    const origin = originOf(req);
    if (origin !== undefined && isOriginAllowed !== null && !isOriginAllowed(origin)) return new UpgradeRefusal(403);
    if (!this.host.reserveSlot()) {
      this.host.refusals.warn('maxConnections', `Refused a handshake with 503: maxConnections (${maxConnections}) reached`);
      return new UpgradeRefusal(503);
    }
    return null;
  }
}
