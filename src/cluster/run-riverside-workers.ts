import { Logger } from '@nestjs/common';
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { OptionChecks } from './option-checks.js';
import { IpcHub } from './ipc-hub.js';

/**
 * Options of {@link runRiversideWorkers}.
 * @publicApi
 */
export interface RiversideWorkersOptions {
  /**
   * Starts the app in a worker (e.g. `NestFactory.create(AppModule)` then `app.listen(3000)`).
   * Every worker listens on the same port; the primary accepts the connections and hands
   * them out (round-robin), or the workers accept them themselves (see `schedulingPolicy`). Call `app.enableShutdownHooks()` in it so that a worker closes its
   * sessions (1001) when the primary stops it.
   */
  main: () => unknown;
  /** Worker processes to run. @default os.availableParallelism() */
  workers?: number;
  /**
   * How long after a worker died its replacement is forked, in ms. A worker that dies within
   * 5 s of its start doubles the delay (up to 30 s), so a crash at boot cannot spin the CPU.
   * @default 1000
   */
  restartDelay?: number;
  /** How long `stop()` (and SIGTERM/SIGINT of the primary) waits for workers to exit before SIGKILL, in ms. @default 10000 */
  stopTimeout?: number;
  /**
   * Stop the workers and exit on SIGTERM (sent on to the workers) and SIGINT (Ctrl-C: the workers
   * have it from the terminal already) of the primary. Under systemd, use `KillMode=mixed` so that
   * only the primary gets SIGTERM. @default true
   */
  handleSignals?: boolean;
  /**
   * Who accepts the connections on the shared port:
   * - `'round-robin'` (Node's default on Linux): the primary accepts each connection and passes
   *   it to the next worker over IPC. Even spread, but every connection costs an IPC round trip
   *   in the primary and in the worker (measured here: ~60-80 µs in the primary, ~150 µs in the
   *   worker, and the primary's one core caps the opening rate of the whole cluster). A
   *   connection passed to a worker in the instant it dies is never answered nor closed by Node
   *   (bench/workers/dead-worker-handoff.mjs): clients should time out their handshake.
   * - `'none'`: the workers share the listening socket and the kernel hands each connection to
   *   whichever worker accepts first. No per-connection IPC (about twice the opening rate in
   *   bench:scale), but no guarantee of an even spread: while the workers are not busy, one
   *   can take 2-3x its share (700 connections at 100/s over 7 workers: 5 to 276 a worker,
   *   bench/workers/accept-spread.mjs). Pair it with `maxConnections` per worker, so that one
   *   too full answers 503 rather than taking more than it can hold.
   *
   * Unset: Node's own choice (`NODE_CLUSTER_SCHED_POLICY` or `cluster.schedulingPolicy`). It
   * only takes effect if nothing in the process forked a cluster worker before.
   * @default Node's default ('round-robin' except on Windows)
   */
  schedulingPolicy?: 'round-robin' | 'none';
  /**
   * Bytes of deliveries the primary's {@link IpcHub} holds for a worker that does not read
   * them; past it, they are dropped, counted and logged (see `IpcHubOptions.maxWorkerBacklog`).
   * @default 67108864 (64 MiB)
   */
  maxWorkerBacklog?: number;
}

/**
 * The primary's handle on its workers.
 * @publicApi
 */
export interface RiversideWorkers {
  /** The hub that carries `IpcTransport` deliveries between the workers. */
  readonly hub: IpcHub;
  /** The workers alive now. */
  workers(): Worker[];
  /** Stops replacing workers, SIGTERMs them, and resolves once all exited (SIGKILL after `stopTimeout`). */
  stop(): Promise<void>;
}

const KNOWN_OPTIONS = ['main', 'workers', 'restartDelay', 'stopTimeout', 'handleSignals', 'schedulingPolicy', 'maxWorkerBacklog'] as const;
/** A worker that lived less than this counts as a crash at start (backoff doubles). */
const SHORT_LIFE_MS = 5000;
const MAX_RESTART_DELAY_MS = 30_000;

/**
 * Runs an app on every core of the machine, on one port: in the primary, forks `workers`
 * processes, runs the {@link IpcHub} of `IpcTransport` and replaces a worker that dies; in a
 * worker, runs `main`. Call it as the whole of your entry file:
 *
 * ```ts
 * await runRiversideWorkers({
 *   workers: Number(process.env.WORKERS ?? os.availableParallelism()),
 *   main: async () => {
 *     const app = await NestFactory.create(AppModule);   // transport: new IpcTransport()
 *     app.enableShutdownHooks();
 *     await app.listen(3000);
 *   },
 * });
 * ```
 *
 * The workers keep Node's default JSON IPC serialization (`IpcTransport` payloads cross in
 * base64). With `cluster.setupPrimary({ serialization: 'advanced' })` called first, they cross
 * as bytes instead; measured on the bench, that saved no CPU per delivery and lengthened the
 * latency tail at 20,000 deliveries/s, so it is not the default.
 *
 * Resolves, in the primary, with a {@link RiversideWorkers} handle once the workers are forked;
 * in a worker, with `null` once `main` has resolved. Clients of a worker that dies see their
 * socket close (1006) and reconnect to the others. Works on Node 20 (no `reusePort` needed).
 * @publicApi
 */
export async function runRiversideWorkers(options: RiversideWorkersOptions): Promise<RiversideWorkers | null> {
  const resolved = validate(options);
  if (!cluster.isPrimary) {
    await resolved.main();
    return null;
  }
  return supervise(resolved);
}

function supervise(options: Resolved): RiversideWorkers {
  const logger = new Logger('Riverside');
  const hub = new IpcHub(options.maxWorkerBacklog === undefined ? {} : { maxWorkerBacklog: options.maxWorkerBacklog });
  const started = new Map<Worker, number>();
  let stopping: Promise<void> | null = null;
  let restartDelay = options.restartDelay;

  const fork = (): void => {
    const worker = cluster.fork();
    hub.attach(worker);
    started.set(worker, Date.now());
  };

  const onExit = (worker: Worker, code: number | null, signal: string | null): void => {
    if (!started.has(worker)) return; // not one of ours
    hub.detach(worker);
    const lived = Date.now() - (started.get(worker) ?? 0);
    started.delete(worker);
    if (stopping !== null) return;
    restartDelay = lived < SHORT_LIFE_MS ? Math.min(restartDelay * 2, MAX_RESTART_DELAY_MS) : options.restartDelay;
    logger.warn(`Worker ${worker.process.pid} died (${signal ?? `exit code ${code}`}); starting a replacement in ${restartDelay} ms`);
    setTimeout(() => {
      if (stopping === null) fork();
    }, restartDelay);
  };
  cluster.on('exit', onExit);

  /** `signal`: what to send each worker (none: wait for them, they were signalled already). */
  const stopWith = (signal: NodeJS.Signals | null): Promise<void> =>
    (stopping ??= (async () => {
      const alive = [...started.keys()];
      await Promise.all(
        alive.map(
          (worker) =>
            new Promise<void>((resolve) => {
              if (worker.isDead()) return resolve();
              const timer = setTimeout(() => worker.process.kill('SIGKILL'), options.stopTimeout);
              worker.once('exit', () => {
                clearTimeout(timer);
                resolve();
              });
              if (signal !== null) worker.process.kill(signal);
            }),
        ),
      );
      cluster.off('exit', onExit);
    })());
  const stop = (): Promise<void> => stopWith('SIGTERM');

  if (options.handleSignals) {
    // Ctrl-C signals the whole process group: the workers have their SIGINT already, and a
    // second signal would cut short the graceful close Nest's shutdown hooks started.
    process.once('SIGINT', () => void stopWith(null).then(() => process.exit(0)));
    process.once('SIGTERM', () => void stop().then(() => process.exit(0)));
  }
  // Read by Node at the first fork, then frozen.
  if (options.schedulingPolicy !== undefined) cluster.schedulingPolicy = options.schedulingPolicy === 'none' ? cluster.SCHED_NONE : cluster.SCHED_RR;
  for (let i = 0; i < options.workers; i++) fork();
  return { hub, workers: () => [...started.keys()], stop };
}

type Resolved = Required<Omit<RiversideWorkersOptions, 'schedulingPolicy' | 'maxWorkerBacklog'>> & Pick<RiversideWorkersOptions, 'schedulingPolicy' | 'maxWorkerBacklog'>;

function validate(options: RiversideWorkersOptions): Resolved {
  const check = new OptionChecks('runRiversideWorkers');
  check.knownKeys(options, KNOWN_OPTIONS, 'an object with main');
  const { main, workers = availableParallelism(), restartDelay = 1000, stopTimeout = 10_000, handleSignals = true, schedulingPolicy, maxWorkerBacklog } = options;
  if (typeof main !== 'function') check.invalid('main', main, 'a function that starts the app');
  if (!(Number.isInteger(workers) && workers >= 1)) check.invalid('workers', workers, 'an integer >= 1');
  if (!(Number.isInteger(restartDelay) && restartDelay >= 0)) check.invalid('restartDelay', restartDelay, 'an integer >= 0 (ms)');
  check.optionalPositiveInteger('stopTimeout', stopTimeout, 'ms');
  if (typeof handleSignals !== 'boolean') check.invalid('handleSignals', handleSignals, 'true or false');
  if (schedulingPolicy !== undefined && schedulingPolicy !== 'round-robin' && schedulingPolicy !== 'none') {
    check.invalid('schedulingPolicy', schedulingPolicy, "'round-robin' or 'none'");
  }
  check.optionalPositiveInteger('maxWorkerBacklog', maxWorkerBacklog, 'bytes');
  return { main, workers, restartDelay, stopTimeout, handleSignals, schedulingPolicy, maxWorkerBacklog };
}
