import type { Logger } from '@nestjs/common';
import { createServer as createHttpServer, type RequestListener, type Server, type ServerOptions } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import type { ResolvedRiversideOptions } from '../module/riverside-options.resolver.js';
import { invalidOptionMessage } from '../riverside.messages.js';
import type { RefusalLog } from './refusal-log.js';

type ListenOptions = Pick<ResolvedRiversideOptions, 'tls' | 'port' | 'host' | 'reusePort'>;

/**
 * The HTTP(S) server Riverside owns when `port` is a number, with the pre-upgrade guard's
 * timeouts. A `tls` option Node refuses fails the boot with an InvalidOptionsError naming it.
 */
export function createStandaloneServer(options: ListenOptions, limits: ServerOptions, onRequest: RequestListener): Server {
  const { tls } = options;
  if (!tls) return createHttpServer(limits, onRequest);
  try {
    return createHttpsServer({ ...(tls as Parameters<typeof createHttpsServer>[0]), ...limits }, onRequest);
  } catch (error) {
    throw new InvalidOptionsError(
      'tls',
      invalidOptionMessage('tls', '(the given cert and key)', `a PEM certificate and its private key (${(error as Error).message})`),
    );
  }
}

/**
 * Binds `port` (and `host`); a port that cannot be had fails the boot with an InvalidOptionsError
 * that says which option to change.
 */
export function listenStandalone(server: Server, options: ListenOptions): Promise<void> {
  const { port, host, reusePort } = options;
  return new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(
        new InvalidOptionsError(
          'port',
          `RiversideModule could not listen on port ${port}${host ? ` of ${host}` : ''}: ${error.code ?? error.message}. ` +
            (error.code === 'EADDRINUSE' ? 'Another process holds it: choose another port option.' : 'Check the port and host options.'),
        ),
      );
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ port, host, ...(reusePort && { reusePort: true }) });
  });
}

/** Logs the errors of a listening server; running out of descriptors, once per interval. */
export function logServerErrors(server: Server, refusals: RefusalLog, logger: Logger): void {
  server.on('error', (error: NodeJS.ErrnoException) => {
    // Out of descriptors, accept() fails for every new connection: log it once per interval.
    if (error.code === 'EMFILE' || error.code === 'ENFILE') {
      refusals.warn(error.code, `Cannot accept connections: ${error.code} (out of file descriptors); lower maxPendingSockets or raise the limit`);
    } else {
      logger.error(`HTTP server error: ${error.message}`, error.stack);
    }
  });
}
