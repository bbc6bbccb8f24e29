import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { requireOptional } from '../optional-package.js';
import type { ResolvedRiversideOptions } from '../module/riverside-options.resolver.js';
import { RIVERSIDE_RESOLVED_OPTIONS } from '../riverside.constants.js';
import { RiversideStats } from './riverside-stats.js';

/** The part of prom-client this file uses. */
interface PromMetric {
  reset(): void;
  inc(labelsOrValue?: Record<string, string> | number, value?: number): void;
  set(value: number): void;
}
interface PromRegistry {
  metrics(): Promise<string>;
  readonly contentType: string;
  registerMetric(metric: unknown): void;
  removeSingleMetric(name: string): void;
}
interface PromClient {
  register: PromRegistry;
  Gauge: new (config: Record<string, unknown>) => PromMetric;
  Counter: new (config: Record<string, unknown>) => PromMetric;
}

function loadPromClient(): PromClient {
  return requireOptional<PromClient>('prom-client', 'The metrics option');
}

/**
 * Exposes RiversideStats as Prometheus metrics when the `metrics` option is set. The values are
 * read from the counters at scrape time: nothing is added to the hot path.
 */
@Injectable()
export class RiversideMetrics implements OnModuleInit, OnModuleDestroy {
  private registry: PromRegistry | null = null;
  private readonly names: string[] = [];

  constructor(
    @Inject(RIVERSIDE_RESOLVED_OPTIONS) private readonly options: ResolvedRiversideOptions,
    private readonly stats: RiversideStats,
  ) {}

  /** The path the standalone server serves the metrics on, if any. */
  get path(): string | null {
    return this.registry === null ? null : (this.options.metrics?.path ?? null);
  }

  onModuleInit(): void {
    const config = this.options.metrics;
    if (config === null) return;
    const prom = loadPromClient();
    const registry = (config.registry as PromRegistry | null) ?? prom.register;
    const stats = this.stats;
    const p = config.prefix;
    const counter = (name: string, help: string, read: () => number) =>
      this.add(registry, name, new prom.Counter({ name, help, registers: [], collect(this: PromMetric) { this.reset(); this.inc(read()); } }));
    const labelled = (name: string, help: string, label: string, read: () => Record<string | number, number>) =>
      this.add(registry, name, new prom.Counter({
        name,
        help,
        labelNames: [label],
        registers: [],
        collect(this: PromMetric) {
          this.reset();
          for (const [value, count] of Object.entries(read())) this.inc({ [label]: value }, count);
        },
      }));
    this.add(registry, `${p}connections`, new prom.Gauge({
      name: `${p}connections`,
      help: 'Open WebSocket connections.',
      registers: [],
      collect(this: PromMetric) { this.set(stats.currentConnections); },
    }));
    counter(`${p}connections_total`, 'WebSocket connections accepted.', () => stats.totalConnections);
    counter(`${p}frames_received_total`, 'Data frames received.', () => stats.framesIn);
    counter(`${p}frames_sent_total`, 'Data frames written.', () => stats.framesOut);
    counter(`${p}invalid_frames_total`, 'Frames of the wrong type or that the codec could not decode.', () => stats.invalidFrames);
    counter(`${p}dropped_messages_total`, 'Messages not written to slow consumers.', () => stats.droppedMessages);
    counter(`${p}transport_errors_total`, 'Cluster transport failures.', () => stats.transportErrors);
    counter(
      `${p}rejected_cluster_messages_total`,
      'Unreadable payloads on node-to-node topics (bad magic or length, unknown version).',
      () => stats.rejectedClusterMessages,
    );
    counter(`${p}refused_joins_total`, 'Joins refused by maxChannelsPerSession or maxIdLength.', () => stats.refusedJoins);
    counter(`${p}invalid_remote_closes_total`, 'Close requests from the cluster fixed (invalid code, over-long reason).', () => stats.invalidRemoteCloses);
    counter(`${p}shed_sockets_total`, 'TCP connections closed by the maxPendingSockets cap.', () => stats.shedSockets);
    counter(`${p}handshake_timeouts_total`, 'Handshakes whose @OnAuthenticate outlived handshakeTimeout.', () => stats.handshakeTimeouts);
    labelled(`${p}handshake_rejections_total`, 'Refused handshakes, by HTTP status.', 'status', () => stats.rejections);
    labelled(`${p}terminations_total`, 'Ended connections, by terminate reason.', 'reason', () => stats.terminations);
    this.registry = registry;
  }

  onModuleDestroy(): void {
    for (const name of this.names.splice(0)) this.registry?.removeSingleMetric(name);
  }

  /** The registry's text exposition, for the standalone server's metrics path. */
  async render(): Promise<{ contentType: string; body: string }> {
    const registry = this.registry as PromRegistry;
    return { contentType: registry.contentType, body: await registry.metrics() };
  }

  private add(registry: PromRegistry, name: string, metric: unknown): void {
    // A second app in one process (tests, hot reload) replaces the first one's metric.
    registry.removeSingleMetric(name);
    registry.registerMetric(metric);
    this.names.push(name);
  }
}
