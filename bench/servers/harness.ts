// What every contender's server process shares: the orchestrator talks to it over IPC
// (start, fan-out bursts, memory readings, stop); the contender only says how it counts
// channel members and how it broadcasts.
import { boundLifetime, nowNs, send, sleep } from '../lib/process.js';

export interface ContenderServer {
  /** Connections in the fan-out channel / room. */
  members(): number;
  /** Open connections. */
  connections(): number;
  /** One message to every member, the way this contender's users write it. */
  broadcast(message: FanoutMessage): void;
  close(): Promise<void>;
}

export interface FanoutMessage {
  type: 'msg';
  seq: number;
  text: string;
}

export type ServerCommand =
  | { type: 'members' }
  | { type: 'burst'; broadcasts: number; text: string; inFlight: number }
  | { type: 'memory' }
  | { type: 'stop' };

export type ServerReport =
  | { type: 'ready'; port: number }
  | { type: 'members'; members: number; connections: number }
  | { type: 'burst-done'; startNs: number; endNs: number }
  | { type: 'memory'; rss: number; heapUsed: number; external: number; arrayBuffers: number; connections: number };

/** The port the orchestrator picked (Nest gateways need it when their decorators run). */
export const BENCH_PORT = Number(process.env.BENCH_PORT ?? 0);

const gc = (globalThis as { gc?: () => void }).gc;

export async function serveBench(server: ContenderServer, port: number): Promise<void> {
  boundLifetime(15 * 60_000);
  process.on('message', (command: ServerCommand) => {
    switch (command.type) {
      case 'members':
        void send({ type: 'members', members: server.members(), connections: server.connections() } satisfies ServerReport);
        return;
      case 'burst':
        burst(server, command.broadcasts, command.text, command.inFlight);
        return;
      case 'memory':
        void memory(server);
        return;
      case 'stop':
        void server.close().finally(() => process.exit(0));
        setTimeout(() => process.exit(0), 3000).unref();
        return;
    }
  });
  await send({ type: 'ready', port } satisfies ServerReport);
}

/**
 * `broadcasts` broadcasts, `inFlight` at a time in one macrotask (as if that many events
 * triggered them in one event-loop turn), each group in its own macrotask.
 */
function burst(server: ContenderServer, broadcasts: number, text: string, inFlight: number): void {
  const startNs = nowNs();
  let seq = 0;
  const next = () => {
    for (let i = 0; i < inFlight && seq < broadcasts; i++) server.broadcast({ type: 'msg', seq: seq++, text });
    if (seq < broadcasts) setImmediate(next);
    else void send({ type: 'burst-done', startNs, endNs: nowNs() } satisfies ServerReport);
  };
  next();
}

async function memory(server: ContenderServer): Promise<void> {
  if (gc === undefined) throw new Error('start the server with --expose-gc');
  for (let i = 0; i < 4; i++) {
    gc();
    await sleep(50);
  }
  const usage = process.memoryUsage();
  await send({
    type: 'memory',
    rss: usage.rss,
    heapUsed: usage.heapUsed,
    external: usage.external,
    arrayBuffers: usage.arrayBuffers,
    connections: server.connections(),
  } satisfies ServerReport);
}
