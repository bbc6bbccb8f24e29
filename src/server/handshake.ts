import type { Logger } from '@nestjs/common';
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { AuthError } from '../auth/auth-error.js';
import { AuthRequest, MalformedRequestError } from '../auth/auth-request.js';
import type { AuthResult } from '../auth/auth-result.interface.js';
import type { ConnectionIdentity } from '../connection/connection.js';
import type { HandlerDefinition } from '../handler/handler-definition.js';
import type { ResolvedRiversideOptions } from '../module/riverside-options.resolver.js';
import { describeValue } from '../riverside.messages.js';
import type { RiversideStats } from '../stats/riverside-stats.js';
import { rejectUpgrade } from './http-responses.js';

/** What a handshake needs from the server. */
export interface HandshakeHost {
  readonly options: ResolvedRiversideOptions;
  readonly stats: RiversideStats;
  readonly logger: Logger;
  readonly wss: WebSocketServer;
  /** Reserves a connection slot; false when `maxConnections` are open or in flight. */
  reserveSlot(): boolean;
  releaseSlot(): void;
  /** Sockets whose handshake holds a slot (awaiting @OnAuthenticate); shutdown destroys them. */
  readonly handshakes: Set<Duplex>;
  /** Turns a reserved slot into an open connection. */
  accept(ws: WebSocket, handler: HandlerDefinition, identity: ConnectionIdentity): void;
}

/** Where ws's handleProtocols finds the subprotocol this handshake selected. */
export const kSelectedProtocol = Symbol('riverside.selected_protocol');

const WEBSOCKET_KEY = /^[+/0-9A-Za-z]{22}==$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

class HandshakeRejection {
  constructor(
    readonly status: number,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {}
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as PromiseLike<unknown>).then === 'function';
}

function destroyOnError(this: Duplex): void {
  this.destroy();
}

function destroyOnEnd(this: Duplex): void {
  this.destroy();
}

/** RFC 6455 4.2.1, checked before anything runs so that a bad upgrade never reaches auth. */
function isValidUpgrade(req: IncomingMessage): boolean {
  const { headers } = req;
  return (
    req.method === 'GET' &&
    (headers.upgrade ?? '').toLowerCase() === 'websocket' &&
    WEBSOCKET_KEY.test(headers['sec-websocket-key'] ?? '') &&
    (headers['sec-websocket-version'] === '13' || headers['sec-websocket-version'] === '8')
  );
}

function offeredSubprotocols(req: IncomingMessage): string[] | null {
  const header = req.headers['sec-websocket-protocol'];
  if (header === undefined) return [];
  const offered = header.split(',').map((protocol) => protocol.trim());
  return offered.every((protocol) => TOKEN.test(protocol)) ? offered : null;
}

/**
 * Runs one handshake on a handler path: validity (400), origin (403), capacity (503),
 * @OnAuthenticate (its status, or 500), subprotocol, then the 101.
 */
export async function performHandshake(
  host: HandshakeHost,
  handler: HandlerDefinition,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  path: string,
  query: string,
): Promise<void> {
  socket.on('error', destroyOnError);
  if (!isValidUpgrade(req)) return refuse(host, socket, new HandshakeRejection(400));
  // Version 8 (pre-RFC) clients send Sec-WebSocket-Origin instead of Origin.
  const origin = req.headers.origin ?? (req.headers['sec-websocket-origin'] as string | undefined);
  if (origin !== undefined && host.options.isOriginAllowed !== null && !host.options.isOriginAllowed(origin)) {
    return refuse(host, socket, new HandshakeRejection(403));
  }
  const offered = offeredSubprotocols(req);
  if (offered === null) return refuse(host, socket, new HandshakeRejection(400));
  let request: AuthRequest;
  try {
    request = new AuthRequest(req, path, query, offered);
  } catch (error) {
    if (error instanceof MalformedRequestError) return refuse(host, socket, new HandshakeRejection(400));
    throw error;
  }
  if (!host.reserveSlot()) {
    host.logger.warn(`Refused a handshake on ${path}: maxConnections (${host.options.maxConnections}) reached`);
    return refuse(host, socket, new HandshakeRejection(503));
  }
  // The slot is ours until the socket becomes a connection or goes away, whichever is first.
  let slotHeld = true;
  const releaseSlot = () => {
    host.handshakes.delete(socket);
    if (slotHeld) {
      slotHeld = false;
      host.releaseSlot();
    }
  };
  socket.once('close', releaseSlot);
  host.handshakes.add(socket);
  // Nothing reads an upgraded socket before ws does, so a client that gives up during a slow
  // @OnAuthenticate would go unnoticed and keep its slot: read now, so that its FIN frees the
  // slot, and hand bytes it pipelined (at most maxPayload) to ws as `head`.
  const early = [head];
  let earlyBytes = head.length;
  const onEarlyData = (chunk: Buffer) => {
    earlyBytes += chunk.length;
    if (earlyBytes > host.options.ws.maxPayload) socket.destroy();
    else early.push(chunk);
  };
  socket.on('data', onEarlyData);
  socket.once('end', destroyOnEnd);
  try {
    const identity = await authenticate(host, handler, request);
    if (socket.destroyed) return releaseSlot();
    // ws attaches its own 'data' listener synchronously in handleUpgrade: no byte is lost.
    socket.removeListener('data', onEarlyData);
    socket.removeListener('end', destroyOnEnd);
    (req as unknown as Record<symbol, string | null>)[kSelectedProtocol] = identity.subprotocol;
    host.wss.handleUpgrade(req, socket, early.length === 1 ? head : Buffer.concat(early), (ws) => {
      socket.removeListener('close', releaseSlot);
      socket.removeListener('error', destroyOnError);
      host.handshakes.delete(socket);
      slotHeld = false;
      host.accept(ws, handler, identity);
    });
  } catch (error) {
    releaseSlot();
    if (error instanceof HandshakeRejection) return refuse(host, socket, error);
    throw error;
  }
}

function refuse(host: HandshakeHost, socket: Duplex, rejection: HandshakeRejection): void {
  host.stats.countRejection(rejection.status);
  if (host.options.debug) host.logger.debug(`Handshake refused with ${rejection.status}`);
  rejectUpgrade(socket, rejection.status, rejection.headers);
}

async function authenticate(host: HandshakeHost, handler: HandlerDefinition, request: AuthRequest): Promise<ConnectionIdentity> {
  if (handler.authenticate === null) {
    return identityFrom(request, { userId: randomUUID() }, chooseSubprotocol(handler, request, undefined));
  }
  let result: AuthResult | undefined;
  try {
    const returned: unknown = handler.authenticate(request);
    result = (isThenable(returned) ? await returned : returned) as AuthResult | undefined;
  } catch (error) {
    if (error instanceof AuthError) throw new HandshakeRejection(error.status, error.headers);
    const cause = error instanceof Error ? error : new Error(String(error));
    host.logger.error(`${handler.labels.authenticate} threw: ${cause.message}`, cause.stack);
    throw new HandshakeRejection(500);
  }
  const problem = invalidAuthResult(result, request, host.options.maxIdLength);
  if (problem !== null) {
    // The result itself is not logged: its state may hold tokens.
    const shown = typeof result === 'object' && result !== null ? 'an invalid result' : describeValue(result);
    host.logger.error(
      `${handler.labels.authenticate} returned ${shown}: ${problem}. ` +
        'Expected { userId: string | number, sessionId?: string, state?: any, subprotocol?: string }, or a thrown AuthError.',
    );
    throw new HandshakeRejection(500);
  }
  const accepted = result as AuthResult;
  return identityFrom(request, accepted, chooseSubprotocol(handler, request, accepted.subprotocol));
}

function invalidAuthResult(result: unknown, request: AuthRequest, maxIdLength: number): string | null {
  if (typeof result !== 'object' || result === null) return 'not an object';
  const { userId, sessionId, subprotocol } = result as Record<string, unknown>;
  if (!(typeof userId === 'string' && userId !== '') && !(typeof userId === 'number' && Number.isFinite(userId))) {
    return 'userId must be a non-empty string or a finite number';
  }
  if (sessionId !== undefined && (typeof sessionId !== 'string' || sessionId === '')) {
    return 'sessionId must be a non-empty string when given';
  }
  // Ids are kept in the registry and in broker topics: their size is bounded like channel ids.
  if (Buffer.byteLength(String(userId)) > maxIdLength) return `userId must be at most ${maxIdLength} bytes (maxIdLength)`;
  if (sessionId !== undefined && Buffer.byteLength(sessionId as string) > maxIdLength) {
    return `sessionId must be at most ${maxIdLength} bytes (maxIdLength)`;
  }
  if (subprotocol !== undefined && (typeof subprotocol !== 'string' || !request.subprotocols.includes(subprotocol))) {
    return `subprotocol must be one the client offered (${request.subprotocols.join(', ') || 'none'})`;
  }
  return null;
}

/** The auth result's choice, else the handler's first protocol the client offered. */
function chooseSubprotocol(handler: HandlerDefinition, request: AuthRequest, chosen: string | undefined): string | null {
  if (chosen !== undefined) return chosen;
  const offered = request.subprotocols;
  if (offered.length === 0) return null;
  const match = handler.subprotocols.find((protocol) => offered.includes(protocol));
  // RFC 6455: a client that offered subprotocols fails a 101 that selects none, so refuse here.
  if (match === undefined) throw new HandshakeRejection(400);
  return match;
}

function identityFrom(
  request: AuthRequest,
  result: AuthResult,
  subprotocol: string | null,
): ConnectionIdentity {
  return {
    userId: String(result.userId),
    sessionId: result.sessionId ?? randomBytes(20).toString('hex'),
    peer: request.peer,
    subprotocol,
    state: result.state,
  };
}
