import { connect as connectTcp, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AuthError,
  type AuthRequest,
  type AuthResult,
  DeliveryService,
  OnAuthenticate,
  OnInit,
  OnMessage,
  RiversideHandler,
  RiversideStats,
  type Session,
} from 'nestjs-riverside';
import { TestClient } from 'nestjs-riverside/testing';
import { eventually, type RunningApp, startRiverside } from '../support/riverside-app.js';

// A server that has opened and closed connections must hold nothing for them: every index and
// guard Riverside keeps per connection or per pending handshake is back to empty once they are
// gone, whichever way they went (refused, reset before or after the 101, closed with or without
// a close frame, while a frame was in flight). bench/soak/churn.mjs runs the same mix at scale;
// this is its regression guard (a deterministic count, no timing).

const CHANNEL = 'churn';
const USERS = 7;

@RiversideHandler({ path: '/churn' })
class ChurnHandler {
  @OnAuthenticate()
  async authenticate(request: AuthRequest): Promise<AuthResult<string>> {
    const { user, role } = request.queries;
    // Settles a turn later: a client can reset while its handshake is pending.
    await new Promise((resolve) => setImmediate(resolve));
    if (typeof user !== 'string' || user === '') throw AuthError.unauthorized();
    return { userId: user, state: role === 'member' ? 'member' : 'idle' };
  }

  @OnInit()
  init(session: Session<string>): void {
    if (session.state === 'member') session.join(CHANNEL);
  }

  @OnMessage()
  echo(message: unknown): unknown {
    return message;
  }
}

const request = (query: string) =>
  `GET /churn?${query} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
  'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
/** A masked text frame `{"n":1}` with a zero mask key (the payload goes as is). */
const TEXT_FRAME = Buffer.concat([Buffer.from([0x81, 0x87, 0, 0, 0, 0]), Buffer.from('{"n":1}')]);

type Ending = 'fin' | 'reset' | 'frame-then-fin';

/** Upgrades on a bare TCP socket; resolves with the status code it was answered, after `ending`. */
function rawClient(port: number, query: string, ending: Ending): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connectTcp(port, '127.0.0.1');
    socket.on('error', reject);
    socket.once('connect', () => socket.write(request(query)));
    socket.once('data', (chunk: Buffer) => {
      const status = chunk.toString('latin1', 9, 12);
      if (ending === 'reset') socket.resetAndDestroy();
      else if (ending === 'frame-then-fin') socket.end(TEXT_FRAME);
      else socket.end();
      resolve(status);
    });
  });
}

/** Sends an upgrade request and resets before the (deferred) authentication has answered. */
function resetDuringHandshake(port: number, query: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = connectTcp(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.on('close', () => resolve());
    socket.once('connect', () => socket.write(request(query), () => socket.resetAndDestroy()));
  });
}

/** Joins (as a member), round-trips a frame and closes with a close frame, as a browser would. */
async function politeMember(url: string): Promise<void> {
  const client = await TestClient.connect(url);
  client.send({ n: 1 });
  expect(await client.expectMessage()).toEqual({ n: 1 });
  await client.close(1000);
}

/** Everything Riverside keeps per connection or per pending handshake, by name. */
function heldFor(running: RunningApp): Record<string, number> {
  const server = running.server as unknown as {
    registry: { connections: Set<unknown>; byUser: Map<unknown, unknown>; byChannel: Map<unknown, unknown> };
    handshakes: Set<unknown>;
    deadlines: { pending: Map<unknown, unknown> };
    guard: { pending: Map<unknown, unknown> };
    pendingTerminations: Set<unknown>;
  };
  return {
    connections: server.registry.connections.size,
    users: server.registry.byUser.size,
    channels: server.registry.byChannel.size,
    handshakes: server.handshakes.size,
    handshakeDeadlines: server.deadlines.pending.size,
    preUpgradeSockets: server.guard.pending.size,
    pendingTerminations: server.pendingTerminations.size,
  };
}

const NOTHING_HELD = {
  connections: 0,
  users: 0,
  channels: 0,
  handshakes: 0,
  handshakeDeadlines: 0,
  preUpgradeSockets: 0,
  pendingTerminations: 0,
};

describe('connection churn', () => {
  let running: RunningApp | undefined;
  afterEach(() => running?.close());

  it('leaves nothing held for connections that came and went, whichever way they ended', async () => {
    running = await startRiverside({ idleTimeout: 600_000 }, [ChurnHandler]);
    const port = running.server.address().port;
    const url = running.url('/churn');
    const rounds = 30;
    const statuses: string[] = [];
    for (let round = 0; round < rounds; round++) {
      // Users repeat across rounds and within one, so users with several sessions come and go too.
      const user = (i: number) => `u${(round + i) % USERS}`;
      const answered = await Promise.all([
        rawClient(port, 'role=member', 'fin'),
        rawClient(port, `user=${user(0)}&role=member`, 'reset'),
        rawClient(port, `user=${user(1)}&role=member`, 'frame-then-fin'),
        rawClient(port, `user=${user(2)}&role=idle`, 'fin'),
        rawClient(port, `user=${user(3)}&role=idle`, 'reset'),
        rawClient(port, `user=${user(4)}&role=member`, 'fin'),
      ]);
      statuses.push(...answered);
      await Promise.all([politeMember(`${url}?user=${user(5)}&role=member`), resetDuringHandshake(port, `user=${user(6)}&role=member`)]);
    }
    expect(statuses.filter((status) => status === '401')).toHaveLength(rounds);
    expect(statuses.filter((status) => status === '101')).toHaveLength(rounds * 5);

    const stats = running.app.get(RiversideStats);
    await eventually(() => expect(stats.currentConnections).toBe(0), 5000);
    // The handshakes reset while pending settle a turn after their reset.
    await eventually(() => expect(heldFor(running!)).toEqual(NOTHING_HELD), 5000);
    expect(running.app.get(DeliveryService).localMembers(CHANNEL)).toEqual([]);
    expect(running.app.get(DeliveryService).deliver({ channel: CHANNEL }, 'anyone?')).toBe(0);
    expect(stats.totalConnections).toBeGreaterThanOrEqual(rounds * 6);
  });
});
