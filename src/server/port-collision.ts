import { EventEmitter } from 'node:events';
import { portTakenByRiversideMessage } from '../riverside.messages.js';

/**
 * Riverside's standalone server listens at bootstrap, before the app's own `listen()`; with
 * both on one port (Riverside's default 3000 is also Nest's), the app's listen fails with a
 * bare `EADDRINUSE` that names neither. This rewrites that one error, in place, before Nest
 * logs and rejects with it, so that it says who holds the port and which option to change.
 */
export function explainPortCollision(appServer: unknown, riversidePort: number): void {
  if (!(appServer instanceof EventEmitter)) return; // an application context has no HTTP server
  const onError = (error: NodeJS.ErrnoException & { port?: number }) => {
    if (error.code !== 'EADDRINUSE' || error.port !== riversidePort) return;
    const original = error.message;
    error.message = portTakenByRiversideMessage(riversidePort);
    error.stack = error.stack?.replace(original, error.message);
  };
  appServer.prependListener('error', onError);
  appServer.once('listening', () => appServer.off('error', onError));
}
