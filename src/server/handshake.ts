import type { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
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
import type { HandshakeDeadlines } from './handshake-deadlines.js';
import { runHandshakeGuards } from './handshake-guards.js';
import { destroyOnError, rejectUpgrade } from './http-responses.js';
import { MAX_EARLY_BYTES_PER_SOCKET, type PreUpgradeGuard } from './pre-upgrade-guard.js';
import type { RefusalLog } from './refusal-log.js';
import { checkUpgrade, UpgradeRefusal } from './upgrade-conformance.js';
import { randomSessionId } from './session-id.js';

/** What a handshake needs from the server. */
export interface HandshakeHost {
  readonly options: ResolvedRiversideOptions;
  readonly stats: RiversideStats;
  readonly logger: Logger;
  readonly wss: WebSocketServer;
  /** The pre-upgrade byte budget. */
  readonly guard: PreUpgradeGuard;
  /** Rate-limited warnings about what clients trigger. */
  readonly refusals: RefusalLog;
  /** Reserves a connection slot; false when `maxConnections` are open or in flight. */
  reserveSlot(): boolean;
  releaseSlot(): void;
  /** Sockets whose handshake holds a slot (awaiting @OnAuthenticate); shutdown destroys them. */
  readonly handshakes: Set<Duplex>;
  /** handshakeTimeout of the handshakes in flight. */
  readonly deadlines: HandshakeDeadlines;
  /** Turns a reserved slot into an open connection. */
  accept(ws: WebSocket, handler: HandlerDefinition, identity: ConnectionIdentity): void;
}

/** Where ws's handleProtocols finds the subprotocol this handshake selected. */
export const kSelectedProtocol = Symbol('riverside.selected_protocol');

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as PromiseLike<unknown>).then === 'function';
}

function destroyOnEnd(this: Duplex): void {
  this.destroy();
}

/** Version 8 (pre-RFC) clients send Sec-WebSocket-Origin instead of Origin. */
export function originOf(req: IncomingMessage): string | undefined {
  return req.headers.origin ?? (req.headers['sec-websocket-origin'] as string | undefined);
}

/**
 * Runs one handshake on a handler path: conformance (400 / 405 / 426), origin (403), pipelined
 * bytes (400), capacity (503), @OnAuthenticate within handshakeTimeout (its status, 500, or 503),
 * subprotocol, then the 101.
 *
 * A synchronous @OnAuthenticate (no handshake guards) completes the upgrade in the same tick,
 * with nothing registered on the socket (not even an 'error' listener: no event can reach the
 * socket before ws attaches its own, and a refusal attaches one in rejectUpgrade); only one that
 * returns a Promise gets the listeners, timer entry and closures that keep its slot accounted
 * for while it runs. Returns a Promise only in that case.
 */
export function performHandshake(
  host: HandshakeHost,
  handler: HandlerDefinition,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  path: string,
  query: string,
): Promise<void> | void {
  const upgrade = checkUpgrade(req, host.options.ws);
  if (upgrade instanceof UpgradeRefusal) return refuse(host, socket, upgrade);
  const origin = originOf(req);
  if (origin !== undefined && host.options.isOriginAllowed !== null && !host.options.isOriginAllowed(origin)) {
    return refuse(host, socket, new UpgradeRefusal(403));
  }
  let request: AuthRequest;
  try {
    request = new AuthRequest(req, path, query, upgrade.subprotocols, host.options.readForwardedFor);
  } catch (error) {
    if (error instanceof MalformedRequestError) return refuse(host, socket, new UpgradeRefusal(400));
    throw error;
  }
  if (head.length > MAX_EARLY_BYTES_PER_SOCKET) return refuse(host, socket, new UpgradeRefusal(400));
  if (!host.reserveSlot()) {
    host.refusals.warn('maxConnections', `Refused a handshake on ${path} with 503: maxConnections (${host.options.maxConnections}) reached`);
    return refuse(host, socket, new UpgradeRefusal(503));
  }
  let outcome: ConnectionIdentity | Promise<ConnectionIdentity>;
  try {
    outcome = authenticate(host, handler, request);
  } catch (error) {
    host.releaseSlot();
    if (error instanceof UpgradeRefusal) return refuse(host, socket, error);
    throw error;
  }
  if (outcome instanceof Promise) return awaitAuthentication(host, handler, req, socket, head, path, outcome);
  // Authenticated in this tick: the pipelined bytes go to ws at once, but are still held to
  // the pre-upgrade budget that handshakes awaiting @OnAuthenticate share.
  if (!host.guard.takeEarlyBytes(head.length)) {
    host.releaseSlot();
    host.refusals.warn('earlyBytes', `Refused a handshake on ${path} with 400: the pre-upgrade byte budget is spent`);
    return refuse(host, socket, new UpgradeRefusal(400));
  }
  host.guard.giveBackEarlyBytes(head.length);
  if (socket.destroyed) return void host.releaseSlot();
  completeUpgrade(host, handler, req, socket, head, outcome, null);
}

/**
 * Hands the socket to ws; the slot becomes the connection's. `accepted` is told first. Should
 * ws abort the upgrade without calling back (it destroys the socket), the slot is released.
 */
function completeUpgrade(
  host: HandshakeHost,
  handler: HandlerDefinition,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  identity: ConnectionIdentity,
  accepted: (() => void) | null,
): void {
  // ws asks handleProtocols only when the client offered subprotocols, and then one was chosen.
  if (identity.subprotocol !== null) (req as unknown as Record<symbol, string>)[kSelectedProtocol] = identity.subprotocol;
  let upgraded = false;
  // Without verifyClient (Riverside never passes one), ws calls back synchronously.
  host.wss.handleUpgrade(req, socket, head, (ws) => {
    upgraded = true;
    accepted?.();
    host.accept(ws, handler, identity);
  });
  if (!upgraded && accepted === null) host.releaseSlot();
}

/** A handshake whose @OnAuthenticate returned a Promise: its slot, early bytes and deadline. */
async function awaitAuthentication(
  host: HandshakeHost,
  handler: HandlerDefinition,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  path: string,
  authenticated: Promise<ConnectionIdentity>,
): Promise<void> {
  // The slot (and the early bytes) are ours until the socket becomes a connection, is refused,
  // or goes away, whichever is first.
  let earlyBytes = 0;
  let settled = false;
  // Errors of the socket while @OnAuthenticate runs only destroy it ('close' settles).
  socket.on('error', destroyOnError);
  const settle = () => {
    if (settled) return false;
    settled = true;
    host.deadlines.delete(socket);
    host.handshakes.delete(socket);
    socket.removeListener('close', onClose);
    socket.removeListener('data', onEarlyData);
    socket.removeListener('end', destroyOnEnd);
    host.guard.giveBackEarlyBytes(earlyBytes);
    host.releaseSlot();
    return true;
  };
  const onClose = () => settle();
  socket.once('close', onClose);
  host.handshakes.add(socket);
  // Nothing reads an upgraded socket before ws does, so a client that gives up during a slow
  // @OnAuthenticate would go unnoticed and keep its slot: read now, so that its FIN frees the
  // slot, and hand bytes it pipelined (a few KiB at most) to ws as `head`.
  const early = [head];
  const takeEarly = (bytes: number): boolean => {
    if (earlyBytes + bytes > MAX_EARLY_BYTES_PER_SOCKET || !host.guard.takeEarlyBytes(bytes)) return false;
    earlyBytes += bytes;
    return true;
  };
  const onEarlyData = (chunk: Buffer) => {
    if (takeEarly(chunk.length)) return void early.push(chunk);
    if (settle()) {
      host.refusals.warn('earlyBytes', `Refused a handshake on ${path} with 400: it pipelined more than ${MAX_EARLY_BYTES_PER_SOCKET} bytes before the 101`);
      refuse(host, socket, new UpgradeRefusal(400));
    }
  };
  host.deadlines.add(socket, () => {
    if (!settle()) return;
    host.stats.handshakeTimeouts++;
    host.refusals.warn(
      'handshakeTimeout',
      `Refused a handshake on ${path} with 503: ${handler.labels.authenticate} did not settle within handshakeTimeout (${host.options.handshakeTimeout} ms)`,
    );
    refuse(host, socket, new UpgradeRefusal(503));
  });
  if (!takeEarly(head.length)) {
    settle();
    host.refusals.warn('earlyBytes', `Refused a handshake on ${path} with 400: the pre-upgrade byte budget is spent`);
    // The refusal this handshake's authentication may still come to is discarded.
    authenticated.catch(() => {});
    return refuse(host, socket, new UpgradeRefusal(400));
  }
  socket.on('data', onEarlyData);
  socket.once('end', destroyOnEnd);
  let identity: ConnectionIdentity;
  try {
    identity = await authenticated;
  } catch (error) {
    // A late refusal of a handshake already answered (timeout, overflow, gone) is discarded.
    if (!settle()) return;
    if (error instanceof UpgradeRefusal) return refuse(host, socket, error);
    throw error;
  }
  if (settled || socket.destroyed) return void settle();
  // ws attaches its own 'data' listener synchronously in handleUpgrade: no byte is lost.
  socket.removeListener('data', onEarlyData);
  socket.removeListener('end', destroyOnEnd);
  const pipelined = early.length === 1 ? head : Buffer.concat(early);
  completeUpgrade(host, handler, req, socket, pipelined, identity, () => {
    // The slot becomes the connection's: accept() takes it over instead of releasing it.
    settled = true;
    host.deadlines.delete(socket);
    host.handshakes.delete(socket);
    socket.removeListener('close', onClose);
    socket.removeListener('error', destroyOnError);
    host.guard.giveBackEarlyBytes(earlyBytes);
  });
}

function refuse(host: HandshakeHost, socket: Duplex, rejection: UpgradeRefusal): void {
  host.stats.countRejection(rejection.status);
  if (host.options.debug) host.logger.debug(`Handshake refused with ${rejection.status}`);
  rejectUpgrade(socket, rejection.status, rejection.headers);
}

/**
 * The identity @OnAuthenticate gives, or a Promise of it when it (or a handshake guard) is
 * asynchronous. Refusals are thrown (or rejected) as UpgradeRefusal.
 */
function authenticate(
  host: HandshakeHost,
  handler: HandlerDefinition,
  request: AuthRequest,
): ConnectionIdentity | Promise<ConnectionIdentity> {
  if (handler.authenticate === null) {
    return identityFrom(request, { userId: randomUUID() }, chooseSubprotocol(handler, request, undefined));
  }
  if (handler.handshakeGuards !== null) return authenticateGuarded(host, handler, handler.handshakeGuards, request);
  let returned: unknown;
  try {
    returned = handler.authenticate(request);
  } catch (error) {
    throw authFailure(host, handler, error);
  }
  if (!isThenable(returned)) return accept(host, handler, request, returned);
  return Promise.resolve(returned).then(
    (result) => accept(host, handler, request, result),
    (error: unknown) => {
      throw authFailure(host, handler, error);
    },
  );
}

/** HTTP guards of @OnAuthenticate (@UseGuards), on the upgrade request, before it runs. */
async function authenticateGuarded(
  host: HandshakeHost,
  handler: HandlerDefinition,
  guards: NonNullable<HandlerDefinition['handshakeGuards']>,
  request: AuthRequest,
): Promise<ConnectionIdentity> {
  let result: unknown;
  try {
    await runHandshakeGuards(guards, request);
    const returned: unknown = handler.authenticate?.(request);
    result = isThenable(returned) ? await returned : returned;
  } catch (error) {
    throw authFailure(host, handler, error);
  }
  return accept(host, handler, request, result);
}

/** An AuthError's status; anything else thrown is logged and answered with 500. */
function authFailure(host: HandshakeHost, handler: HandlerDefinition, error: unknown): UpgradeRefusal {
  if (error instanceof AuthError) return new UpgradeRefusal(error.status, error.headers);
  const cause = error instanceof Error ? error : new Error(String(error));
  host.logger.error(`${handler.labels.authenticate} threw: ${cause.message}`, cause.stack);
  return new UpgradeRefusal(500);
}

/** The identity of a valid auth result; an invalid one is logged and answered with 500. */
function accept(host: HandshakeHost, handler: HandlerDefinition, request: AuthRequest, result: unknown): ConnectionIdentity {
  const problem = invalidAuthResult(result, request, host.options.maxIdLength);
  if (problem !== null) {
    // The result itself is not logged: its state may hold tokens.
    const shown = typeof result === 'object' && result !== null ? 'an invalid result' : describeValue(result);
    host.logger.error(
      `${handler.labels.authenticate} returned ${shown}: ${problem}. ` +
        'Expected { userId: string | number, sessionId?: string, state?: any, subprotocol?: string }, or a thrown AuthError.',
    );
    throw new UpgradeRefusal(500);
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
  if (match === undefined) throw new UpgradeRefusal(400);
  return match;
}

function identityFrom(
  request: AuthRequest,
  result: AuthResult,
  subprotocol: string | null,
): ConnectionIdentity {
  return {
    userId: String(result.userId),
    sessionId: result.sessionId ?? randomSessionId(),
    peer: request.peer,
    subprotocol,
    state: result.state,
  };
}
