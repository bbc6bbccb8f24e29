import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on loopback that holds every chunk for `delayMs` in each direction, in order:
 * a broker that is `delayMs` away. Put it between one node and the broker to make the node's
 * subscriptions slow to arrive while other nodes' publishes are not.
 */
export class DelayingProxy {
  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly sockets: Set<Socket>,
  ) {}

  /** Listens on a free loopback port and forwards to `targetPort` on loopback. */
  static async start(targetPort: number, delayMs: number): Promise<DelayingProxy> {
    const sockets = new Set<Socket>();
    const server = createServer((client) => {
      const upstream = createConnection(targetPort, '127.0.0.1');
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.setNoDelay(true);
        socket.on('close', () => sockets.delete(socket));
        socket.on('error', () => undefined);
      }
      pipeDelayed(client, upstream, delayMs);
      pipeDelayed(upstream, client, delayMs);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new DelayingProxy(server, (server.address() as { port: number }).port, sockets);
  }

  /** `redis://127.0.0.1:<port>` or `nats://...` of the proxy for a broker URL scheme. */
  url(scheme: 'redis' | 'nats'): string {
    return `${scheme}://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Forwards `from` to `to`, each chunk `delayMs` later; an end or error travels the same way. */
function pipeDelayed(from: Socket, to: Socket, delayMs: number): void {
  from.on('data', (chunk: Buffer) => {
    setTimeout(() => {
      if (!to.destroyed) to.write(chunk);
    }, delayMs);
  });
  from.on('close', () => setTimeout(() => to.destroy(), delayMs));
}
