import type { WebSocket } from 'ws';
import type { Connection } from './connection.js';

/** The connection is a property of its socket, so ws listeners can be shared functions. */
const kConnection = Symbol('riverside.connection');

/** Routes the socket's events to its connection, with no closure per connection. */
export function listenTo(ws: WebSocket, connection: Connection): void {
  (ws as unknown as Record<symbol, Connection>)[kConnection] = connection;
  ws.on('message', onSocketMessage);
  ws.on('ping', onSocketPing);
  ws.on('pong', onSocketPong);
  ws.on('error', onSocketError);
  ws.on('close', onSocketClose);
}

function connectionOf(ws: unknown): Connection {
  return (ws as Record<symbol, Connection>)[kConnection];
}

// Shared listeners: `this` is the WebSocket, so no closure is created per connection.
function onSocketMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  connectionOf(this).receive(data, isBinary);
}
function onSocketPing(this: WebSocket): void {
  connectionOf(this).receivePing();
}
function onSocketPong(this: WebSocket): void {
  connectionOf(this).receivePong();
}
function onSocketError(this: WebSocket, error: Error): void {
  connectionOf(this).socketErrored(error);
}
function onSocketClose(this: WebSocket, code: number, reason: Buffer): void {
  connectionOf(this).socketClosed(code, reason);
}
