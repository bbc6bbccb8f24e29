import { Injectable } from '@nestjs/common';

/**
 * Counters of this node, kept with plain increments on the hot path. Inject it anywhere.
 * @publicApi
 */
@Injectable()
export class RiversideStats {
  /** Open WebSocket connections (after the 101, until the socket closed). */
  currentConnections = 0;
  /** Connections ever opened. */
  totalConnections = 0;
  /** Data frames received (text and binary, decodable or not). */
  framesIn = 0;
  /** Data frames written. */
  framesOut = 0;
  /** Frames dropped because they were of the wrong type or undecodable. */
  invalidFrames = 0;
  /** Messages not written to slow consumers (with `slowConsumer: 'drop'`). */
  droppedMessages = 0;
  /** `join()` calls refused by `maxChannelsPerSession`, `maxIdLength` or `maxMetaSize` (a `PresenceMetaError`). */
  refusedJoins = 0;
  /** Close requests from other nodes or external publishers with an invalid code or an over-long reason (fixed, then applied). */
  invalidRemoteCloses = 0;
  /** Cluster transport failures (publish, subscribe, unreadable messages); local delivery goes on. */
  transportErrors = 0;
  /**
   * Payloads on node-to-node topics that were not Riverside messages this node can read (bad
   * magic or length, unknown major version or kind); each also counts as a transport error.
   */
  rejectedClusterMessages = 0;
  /**
   * TCP connections of the standalone server closed by the `maxPendingSockets` cap: newcomers shed
   * with 503 and idle sockets evicted with 408.
   */
  shedSockets = 0;
  /** Bytes clients pipelined behind upgrade requests that wait for their 101 (at most 8 KiB each, 16 MiB in all). */
  preUpgradeBytes = 0;
  /** Handshakes whose @OnAuthenticate did not settle within `handshakeTimeout` (answered 503, also in `rejections`). */
  handshakeTimeouts = 0;
  /** When this node started counting. */
  readonly startedAt = new Date();
  /** Refused handshakes by HTTP status. */
  readonly rejections: Record<number, number> = {};
  /** Ended connections by terminate reason name ('remote', 'error', 'stop', 'idleTimeout', 'handlerTimeout'...). */
  readonly terminations: Record<string, number> = {};

  /** @internal */
  countRejection(status: number): void {
    this.rejections[status] = (this.rejections[status] ?? 0) + 1;
  }

  /** @internal */
  countTermination(reasonName: string): void {
    this.terminations[reasonName] = (this.terminations[reasonName] ?? 0) + 1;
  }
}
