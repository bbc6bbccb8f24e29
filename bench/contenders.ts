import type { Protocol } from './load/bench-socket.js';

export interface Contender {
  id: 'raw-ws' | 'raw-ws-framed' | 'riverside' | 'nest-ws' | 'socket.io';
  label: string;
  /** Compiled server script, relative to bench/dist. */
  server: string;
  protocol: Protocol;
  path: string;
  /** Has a broadcast primitive worth measuring in the fan-out scenario. */
  fanout: boolean;
  /** Only in the fan-out scenario (a variant of another contender's broadcast). */
  fanoutOnly?: boolean;
  /** Extra environment of its server process. */
  env?: Record<string, string>;
  color: string;
}

const ALL: readonly Contender[] = [
  { id: 'raw-ws', label: 'raw ws', server: 'servers/raw-ws.server.js', protocol: 'ws', path: '/bench', fanout: true, color: '#7f7f7f' },
  // The fastest broadcast a raw ws user can write: the frame built once (ws's own Sender.frame)
  // and written to every member's TCP socket, skipping ws.send() per member.
  {
    id: 'raw-ws-framed',
    label: 'raw ws (pre-framed)',
    server: 'servers/raw-ws.server.js',
    protocol: 'ws',
    path: '/bench',
    fanout: true,
    fanoutOnly: true,
    env: { BENCH_PREFRAMED: '1' },
    color: '#bcbd22',
  },
  { id: 'riverside', label: 'Riverside', server: 'servers/riverside.server.js', protocol: 'ws', path: '/bench', fanout: true, color: '#1f77b4' },
  // Nest's WsAdapter has no broadcast: its users write the raw ws loop, measured above.
  { id: 'nest-ws', label: 'Nest WsAdapter', server: 'servers/nest-ws.server.js', protocol: 'nest-ws', path: '/', fanout: false, color: '#d62728' },
  { id: 'socket.io', label: 'Socket.IO (Nest IoAdapter)', server: 'servers/socket-io.server.js', protocol: 'socket.io', path: '/', fanout: true, color: '#2ca02c' },
];

/** BENCH_CONTENDERS=raw-ws,riverside narrows a run (raw ws is kept: it is the baseline). */
const chosen = process.env.BENCH_CONTENDERS?.split(',');
export const CONTENDERS: readonly Contender[] = chosen
  ? ALL.filter((contender) => contender.id === 'raw-ws' || chosen.includes(contender.id))
  : ALL;
/** Contenders of the echo, connect-rate and memory scenarios. */
export const FULL_CONTENDERS: readonly Contender[] = CONTENDERS.filter((contender) => !contender.fanoutOnly);
