// bench:scale's server: the built package (dist/) on `workers` cluster workers sharing one port
// through runRiversideWorkers(), over IpcTransport or RedisTransport. The orchestrator speaks to
// the primary over IPC; the primary relays to its workers (cluster IPC, next to the IpcHub's own
// messages) and answers with their figures. Stopped by SIGTERM (the drain is measured).
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import cluster, { type Worker } from 'node:cluster';
import {
  type AuthRequest,
  type AuthResult,
  DeliveryService,
  IpcTransport,
  LocalTransport,
  OnAuthenticate,
  OnInit,
  OnTerminate,
  RedisTransport,
  RiversideHandler,
  RiversideModule,
  RiversideStats,
  ShardedTransport,
  type Session,
  runRiversideWorkers,
} from 'nestjs-riverside';
import { boundLifetime, childConfig, nowNs, send, sleep } from '../lib/process.js';
import { traceProcess } from '../lib/trace.js';

export interface ScaleServerConfig {
  port: number;
  workers: number;
  transport: 'ipc' | 'redis' | 'local';
  redisUrl: string;
  prefix: string;
  maxHandshakesPerSecond?: number;
  /** runRiversideWorkers' schedulingPolicy: who accepts the connections (the primary, or each worker). */
  schedulingPolicy: 'round-robin' | 'none';
  /** The workers' `presence` option. */
  presence: boolean;
  maxLifetimeMs: number;
  /** Record how long each session waited from @OnAuthenticate to @OnInit (the storm run). */
  measureInit?: boolean;
}

/** The connected users: `[first, count]` ranges of `u<n>` ids (one per load generator). */
export type UserRanges = [number, number][];

/** Where the drive picks its target users: `[first, count]` ranges of `u<n>` ids, or a list of ids. */
export type DriveTargets = UserRanges | string[];

/** A user id picked uniformly among the ranges. */
function randomUser(ranges: UserRanges, total: number): string {
  let at = Math.floor(Math.random() * total);
  for (const [first, count] of ranges) {
    if (at < count) return `u${first + at}`;
    at -= count;
  }
  return `u${ranges[0][0]}`;
}

/** Orchestrator -> primary. */
export type ScaleCommand =
  | { type: 'stats'; gc: boolean }
  /**
   * Deliveries to users at `rate` msg/s (all workers together) for `seconds`: to users of other
   * workers, or of the same one. `users`: ranges, or a list of ids (`targets` of 'killed').
   * `survivors`: only the workers that outlived the last 'kill-worker' drive (not its replacement).
   */
  | { type: 'drive'; rate: number; seconds: number; users: DriveTargets; where: 'remote' | 'local'; survivors?: boolean }
  /** `count` deliveries to channel `room` from the first worker, each in its own macrotask. */
  | { type: 'broadcast'; count: number }
  /** SIGKILLs the first worker; `sample` users of each other worker come back in 'killed' (targets for deliveries during the storm). */
  | { type: 'kill-worker'; sample: number }
  /** The waits from @OnAuthenticate to @OnInit (ms) of every worker's sessions since the last 'kill-worker' (measureInit only). */
  | { type: 'init-waits' };

export interface WorkerFigures {
  pid: number;
  connections: number;
  members: number;
  rss: number;
  heapUsed: number;
}

/** Primary -> orchestrator. */
export type ScaleReport =
  | { type: 'ready'; primaryPid: number; workerPids: number[] }
  | { type: 'stats'; primary: { pid: number; rss: number }; workers: WorkerFigures[] }
  | { type: 'driven'; sent: number; missed: number }
  | { type: 'broadcast-done'; startNs: number; endNs: number }
  /** Right after the SIGKILL; `replaced` follows once the replacement listens. */
  | { type: 'killed'; pid: number; connections: number; targets: string[] }
  | { type: 'init-waits'; waits: number[] }
  | { type: 'replaced'; pid: number };

/** Primary <-> worker, next to the IpcHub's messages (which carry `riverside`). */
type WorkerMessage =
  | { bench: 'stats'; gc: boolean }
  | { bench: 'drive'; rate: number; seconds: number; users: DriveTargets; where: 'remote' | 'local' }
  | { bench: 'broadcast'; count: number }
  | { bench: 'users'; count: number }
  | { bench: 'init-waits'; reset: boolean };
type WorkerAnswer =
  | { bench: 'stats'; figures: WorkerFigures }
  | { bench: 'driven'; sent: number; missed: number }
  | { bench: 'broadcast-done'; startNs: number; endNs: number }
  | { bench: 'users'; users: string[] }
  | { bench: 'init-waits'; waits: number[] };

const config = childConfig<ScaleServerConfig>();
const ROOM = 'room';

/** Users with a session on this worker (for picking remote or local targets). */
const localUsers = new Set<string>();
/** measureInit: when each user's handshake reached @OnAuthenticate (ms), until its @OnInit. */
const authenticatedAt = new Map<string, number>();
/** measureInit: ms from @OnAuthenticate to @OnInit, per session since the last reset. */
let initWaits: number[] = [];

@RiversideHandler({ path: '/bench' })
class ScaleHandler {
  @OnAuthenticate()
  authenticate(request: AuthRequest): AuthResult<boolean> {
    const { user, role } = request.queries;
    if (config.measureInit) authenticatedAt.set(String(user), performance.now());
    return { userId: String(user), state: role === 'member' };
  }

  @OnInit()
  init(session: Session<boolean>): void {
    localUsers.add(session.userId);
    if (session.state) session.join(ROOM);
    const at = authenticatedAt.get(session.userId);
    if (at !== undefined) {
      authenticatedAt.delete(session.userId);
      initWaits.push(performance.now() - at);
    }
  }

  @OnTerminate()
  terminate(_reason: unknown, session: Session<boolean>): void {
    localUsers.delete(session.userId);
  }
}

function transport() {
  switch (config.transport) {
    case 'redis': {
      // Several URLs, comma-separated: one shard per Redis server.
      const shards = config.redisUrl.split(',').map((url) => new RedisTransport({ url, prefix: config.prefix }));
      return shards.length === 1 ? shards[0] : new ShardedTransport({ shards });
    }
    case 'ipc':
      return new IpcTransport({ prefix: config.prefix });
    case 'local':
      return new LocalTransport(); // one worker, no cluster delivery: the single-node baseline
  }
}

@Module({
  imports: [
    RiversideModule.forRoot({
      port: config.port,
      host: '127.0.0.1',
      transport: transport(),
      // Below the 20,000 files a process may hold here: a worker that would take more answers 503.
      maxConnections: 19_000,
      idleTimeout: 0,
      shutdownTimeout: 30_000,
      presence: config.presence,
      ...(config.maxHandshakesPerSecond !== undefined && { maxHandshakesPerSecond: config.maxHandshakesPerSecond }),
    }),
  ],
  providers: [ScaleHandler],
})
class ScaleModule {}

async function worker(): Promise<void> {
  traceProcess('worker', undefined, 5000);
  const app = await NestFactory.createApplicationContext(ScaleModule, { logger: ['error', 'warn'] });
  app.enableShutdownHooks();
  const delivery = app.get(DeliveryService);
  const stats = app.get(RiversideStats);
  const gc = (globalThis as { gc?: () => void }).gc;
  const answer = (message: WorkerAnswer) => process.send?.(message);

  process.on('message', (message: WorkerMessage) => {
    if (typeof message !== 'object' || message === null || !('bench' in message)) return;
    switch (message.bench) {
      case 'stats':
        void (async () => {
          if (message.gc && gc) for (let i = 0; i < 3; i++) (gc(), await sleep(30));
          const usage = process.memoryUsage();
          answer({
            bench: 'stats',
            figures: { pid: process.pid, connections: stats.currentConnections, members: delivery.localMembers(ROOM).length, rss: usage.rss, heapUsed: usage.heapUsed },
          });
        })();
        return;
      case 'drive':
        void drive(delivery, message.rate, message.seconds, message.users, message.where).then(({ sent, missed }) => answer({ bench: 'driven', sent, missed }));
        return;
      case 'users':
        answer({ bench: 'users', users: [...localUsers].slice(0, message.count) });
        return;
      case 'init-waits':
        answer({ bench: 'init-waits', waits: initWaits });
        if (message.reset) initWaits = [];
        return;
      case 'broadcast': {
        const startNs = nowNs();
        let seq = 0;
        const next = () => {
          delivery.deliver({ channel: ROOM }, { t: nowNs(), seq });
          if (++seq < message.count) setImmediate(next);
          else answer({ bench: 'broadcast-done', startNs, endNs: nowNs() });
        };
        next();
        return;
      }
    }
  });
}

/**
 * `rate` deliveries a second for `seconds`, in 5 ms ticks (catching up on late ticks), each to a
 * user picked at random among the connected `users`: one with no session here ('remote') or one with ('local').
 * The message carries the monotonic send time; the clients compute the latency.
 */
async function drive(delivery: DeliveryService, rate: number, seconds: number, users: DriveTargets, where: 'remote' | 'local') {
  const local = [...localUsers];
  const listed = typeof users[0] === 'string' ? (users as string[]) : null;
  const total = listed === null ? (users as UserRanges).reduce((n, [, count]) => n + count, 0) : 0;
  const pick = listed === null ? () => randomUser(users as UserRanges, total) : () => listed[Math.floor(Math.random() * listed.length)];
  const startNs = nowNs();
  const endNs = startNs + seconds * 1e9;
  let sent = 0;
  let missed = 0;
  while (nowNs() < endNs) {
    const due = Math.floor(((nowNs() - startNs) / 1e9) * rate);
    for (; sent < due; sent++) {
      let user: string;
      if (where === 'local') user = local[Math.floor(Math.random() * local.length)];
      else {
        let tries = 0;
        do user = pick();
        while (localUsers.has(user) && ++tries < 20);
        if (localUsers.has(user)) missed++;
      }
      delivery.deliver({ user }, { t: nowNs() });
    }
    await sleep(5);
  }
  return { sent, missed };
}

async function primary(): Promise<void> {
  boundLifetime(config.maxLifetimeMs);
  traceProcess('primary', undefined, 5000);
  const supervisor = await runRiversideWorkers({ workers: config.workers, main: worker, restartDelay: 100, stopTimeout: 60_000, schedulingPolicy: config.schedulingPolicy });
  if (supervisor === null) return;
  let listening = 0;
  await new Promise<void>((resolve) => {
    const onListening = () => {
      if (++listening === config.workers) {
        cluster.off('listening', onListening);
        resolve();
      }
    };
    cluster.on('listening', onListening);
  });

  /** Sends to every worker and collects one answer of `kind` from each. */
  const ask = <T extends WorkerAnswer>(message: WorkerMessage, kind: T['bench'], workers = supervisor.workers()): Promise<T[]> =>
    Promise.all(
      workers.map(
        (w: Worker) =>
          new Promise<T>((resolve) => {
            const listener = (answer: WorkerAnswer) => {
              if (answer?.bench !== kind) return;
              w.off('message', listener);
              resolve(answer as T);
            };
            w.on('message', listener);
            w.send(message);
          }),
      ),
    );

  /** The workers that outlived the last 'kill-worker' (its replacement not among them). */
  let survivors: Worker[] = [];

  process.on('message', (command: ScaleCommand) => {
    void (async () => {
      switch (command.type) {
        case 'stats': {
          const answers = await ask<Extract<WorkerAnswer, { bench: 'stats' }>>({ bench: 'stats', gc: command.gc }, 'stats');
          await send({ type: 'stats', primary: { pid: process.pid, rss: process.memoryUsage().rss }, workers: answers.map((a) => a.figures) } satisfies ScaleReport);
          return;
        }
        case 'drive': {
          const workers = command.survivors ? survivors : supervisor.workers();
          const answers = await ask<Extract<WorkerAnswer, { bench: 'driven' }>>(
            { bench: 'drive', rate: command.rate / workers.length, seconds: command.seconds, users: command.users, where: command.where },
            'driven',
            workers,
          );
          await send({ type: 'driven', sent: answers.reduce((n, a) => n + a.sent, 0), missed: answers.reduce((n, a) => n + a.missed, 0) } satisfies ScaleReport);
          return;
        }
        case 'broadcast': {
          const [done] = await ask<Extract<WorkerAnswer, { bench: 'broadcast-done' }>>({ bench: 'broadcast', count: command.count }, 'broadcast-done', supervisor.workers().slice(0, 1));
          await send({ type: 'broadcast-done', startNs: done.startNs, endNs: done.endNs } satisfies ScaleReport);
          return;
        }
        case 'kill-worker': {
          const [victim, ...others] = supervisor.workers();
          survivors = others;
          const [{ figures }] = await ask<Extract<WorkerAnswer, { bench: 'stats' }>>({ bench: 'stats', gc: false }, 'stats', [victim]);
          const samples = await ask<Extract<WorkerAnswer, { bench: 'users' }>>({ bench: 'users', count: command.sample }, 'users', others);
          await ask({ bench: 'init-waits', reset: true }, 'init-waits', others);
          const replaced = new Promise<number>((resolve) => cluster.once('listening', (w) => resolve(w.process.pid ?? -1)));
          victim.process.kill('SIGKILL');
          await send({ type: 'killed', pid: figures.pid, connections: figures.connections, targets: samples.flatMap((s) => s.users) } satisfies ScaleReport);
          await send({ type: 'replaced', pid: await replaced } satisfies ScaleReport);
          return;
        }
        case 'init-waits': {
          const answers = await ask<Extract<WorkerAnswer, { bench: 'init-waits' }>>({ bench: 'init-waits', reset: false }, 'init-waits');
          await send({ type: 'init-waits', waits: answers.flatMap((a) => a.waits) } satisfies ScaleReport);
          return;
        }
      }
    })();
  });
  await send({ type: 'ready', primaryPid: process.pid, workerPids: supervisor.workers().map((w) => w.process.pid ?? -1) } satisfies ScaleReport);
}

if (cluster.isPrimary) await primary();
else await runRiversideWorkers({ main: worker });
