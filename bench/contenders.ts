import type { Protocol } from './load/bench-socket.js';

export interface Contender {
  id: 'raw-ws' | 'riverside' | 'riverside-redis' | 'riverside-nats' | 'nest-ws' | 'socket.io';
  label: string;
  /** Compiled server script, relative to bench/dist. */
  server: string;
  protocol: Protocol;
  path: string;
  /** Has a broadcast primitive worth measuring in the fan-out scenario. */
  fanout: boolean;
  /** Measured in the idle-memory scenario only (a cluster transport's cost per connection). */
  memoryOnly?: boolean;
  /** Environment of its server process. */
  env?: Record<string, string>;
  color: string;
}

export const ALL_CONTENDERS: readonly Contender[] = [
  { id: 'raw-ws', label: 'raw ws', server: 'servers/raw-ws.server.js', protocol: 'ws', path: '/bench', fanout: true, color: '#7f7f7f' },
  { id: 'riverside', label: 'Riverside', server: 'servers/riverside.server.js', protocol: 'ws', path: '/bench', fanout: true, color: '#1f77b4' },
  // The same server on a cluster transport (the shared Redis / NATS of this machine): what a
  // connection costs with its broker subscription.
  { id: 'riverside-redis', label: 'Riverside + RedisTransport', server: 'servers/riverside.server.js', protocol: 'ws', path: '/bench', fanout: false, memoryOnly: true, env: { BENCH_TRANSPORT: 'redis' }, color: '#9467bd' },
  { id: 'riverside-nats', label: 'Riverside + NatsTransport', server: 'servers/riverside.server.js', protocol: 'ws', path: '/bench', fanout: false, memoryOnly: true, env: { BENCH_TRANSPORT: 'nats' }, color: '#8c564b' },
  // Nest's WsAdapter has no broadcast: its users write the raw ws loop, measured above.
  { id: 'nest-ws', label: 'Nest WsAdapter', server: 'servers/nest-ws.server.js', protocol: 'nest-ws', path: '/', fanout: false, color: '#d62728' },
  { id: 'socket.io', label: 'Socket.IO (Nest IoAdapter)', server: 'servers/socket-io.server.js', protocol: 'socket.io', path: '/', fanout: true, color: '#2ca02c' },
];

/** BENCH_CONTENDERS=raw-ws,riverside narrows a run (raw ws is kept: it is the baseline). */
const chosen = process.env.BENCH_CONTENDERS?.split(',');
export const CONTENDERS: readonly Contender[] = chosen
  ? ALL_CONTENDERS.filter((contender) => contender.id === 'raw-ws' || chosen.includes(contender.id))
  : ALL_CONTENDERS;
