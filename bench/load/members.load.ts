// Holds `count` connections open for the fan-out (SPEC 13.2) and idle-memory (13.3)
// scenarios, and tells the orchestrator when the messages it was told to expect have all
// arrived. Several of these run at once, each from its own 127.0.0.x source address: one
// process may hold 20,000 files, one source address has ~28k ephemeral ports.
import { boundLifetime, childConfig, nowNs, send } from '../lib/process.js';
import { BenchSocket, type Protocol } from './bench-socket.js';
import { pooled } from './wire.js';

export interface MembersLoadConfig {
  protocol: Protocol;
  host: string;
  port: number;
  path: string;
  count: number;
  role: 'member' | 'idle';
  userPrefix: string;
  localAddress?: string;
  maxLifetimeMs: number;
}

export type MembersCommand = { type: 'arm'; perSocket: number } | { type: 'close' };

export type MembersReport =
  | { type: 'ready'; connected: number; connectNs: number }
  | { type: 'armed' }
  /** `received`: messages its connections got since the arm, the moment they reached what was armed. */
  | { type: 'reached'; atNs: number; received: number }
  | { type: 'error'; message: string };

const config = childConfig<MembersLoadConfig>();
boundLifetime(config.maxLifetimeMs);

let received = 0;
let receivedAtArm = 0;
let target = Number.POSITIVE_INFINITY;

let sockets: BenchSocket[];
const connectStartNs = nowNs();
let connectNs = 0;
try {
  sockets = await pooled(
    Array.from({ length: config.count }, (_, i) => i),
    64,
    async (i) => {
      const socket = await BenchSocket.connect({
        protocol: config.protocol,
        host: config.host,
        port: config.port,
        path: config.path,
        user: `${config.userPrefix}-${i}`,
        role: config.role,
        localAddress: config.localAddress,
      });
      let seen = 0;
      socket.onData = () => {
        const count = socket.reader.count;
        received += count - seen;
        seen = count;
        if (received >= target) {
          target = Number.POSITIVE_INFINITY;
          void send({ type: 'reached', atNs: nowNs(), received: received - receivedAtArm } satisfies MembersReport);
        }
      };
      return socket;
    },
  );
  connectNs = nowNs() - connectStartNs;
} catch (error) {
  await send({ type: 'error', message: (error as Error).message } satisfies MembersReport);
  process.exit(1);
}

process.on('message', (command: MembersCommand) => {
  if (command.type === 'arm') {
    receivedAtArm = received;
    target = received + command.perSocket * sockets.length;
    void send({ type: 'armed' } satisfies MembersReport);
  } else if (command.type === 'close') {
    for (const socket of sockets) socket.destroy();
    process.exit(0);
  }
});

await send({ type: 'ready', connected: sockets.filter((socket) => socket.isOpen).length, connectNs } satisfies MembersReport);
