import { Inject, Injectable, Logger } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import type { Connection } from '../../connection/connection.js';
import { ClusterRelay } from '../cluster-relay.js';
import { type MembershipListener, SessionRegistry } from '../../delivery/session-registry.js';
import { PresenceMetaError } from '../../errors/presence-meta.error.js';
import type { ResolvedRiversideOptions } from '../../module/riverside-options.resolver.js';
import { RIVERSIDE_RESOLVED_OPTIONS } from '../../riverside.constants.js';
import { RiversideStats } from '../../stats/riverside-stats.js';
import { LocalTransport } from '../local.transport.js';
import { PRESENCE_TOPIC, presenceInboxTopic } from '../topics.js';
import type { RiversideTransport } from '../transport.interface.js';
import { NodeReplica, type ReplicaChange } from './node-replica.js';
import { decodePresence, encodePresence, packOps, type PresenceMessage, type PresenceOp } from './presence-message.js';
import { GridInterval } from './grid-interval.js';
import { PresenceEvents } from './presence-events.js';
import { StateRequests } from './state-requests.js';
import type { PresenceLeaveReason, PresenceMember } from './presence.types.js';
import { TransportFailures } from '../transport-failures.js';

/** A node heard from within this many heartbeats is live; later, it is suspect (reported missing). */
export const SUSPECT_AFTER_HEARTBEATS = 3;
/** Deltas kept while a node's state is awaited; past it they are dropped and the state asked again. */
const MAX_BUFFERED_DELTAS = 10_000;
/** A departed node id is remembered this many presenceTimeouts (to tell a revival from a newcomer). */
const FORGET_DEPARTED_AFTER = 10;

/** Local monotonic time in ms: liveness never reads the wall clock, so clock skew cannot matter. */
const monotonic = (): number => performance.now();

/**
 * Cluster presence, Phoenix-Presence style, over the transport's publish/subscribe only (so it
 * works alike on every broker, and a new broker needs no presence code):
 *
 * - every node publishes the changes of its own sessions as numbered deltas, and a heartbeat
 *   carrying its latest number every `presenceHeartbeat` ms, on one presence topic;
 * - every node keeps a replica of every other node's entries; a gap in a node's numbers, or a node
 *   it does not know, makes it ask that node for its state (answered from its registry);
 * - a node not heard from for SUSPECT_AFTER_HEARTBEATS heartbeats is reported in `missingNodes`;
 *   after `presenceTimeout` its entries are removed and one live node (the lowest id) emits the
 *   leave events; a clean shutdown says `bye` and its entries go at once;
 * - node ids are random per process start, so a restarted node never brings back stale entries.
 *
 * With the LocalTransport there is nothing to replicate: queries read the registry and events come
 * from it, at no cost beyond the listeners.
 */
@Injectable()
export class PresenceTracker implements MembershipListener {
  readonly nodeId: string;
  /** Whether this node replicates presence with others: a cluster transport, and `presence` on. */
  readonly clustered: boolean;
  readonly events = new PresenceEvents();
  /** The other nodes, by id. */
  readonly replicas = new Map<string, NodeReplica>();
  private readonly transport: RiversideTransport;
  private readonly heartbeat: number;
  private readonly timeout: number;
  /** Nodes declared down, or gone with a bye (whose stragglers are ignored), and since when. */
  private readonly departed = new Map<string, { readonly at: number; readonly bye: boolean }>();
  /** Local changes not yet published, each op already JSON. */
  private pending: string[] = [];
  private flushScheduled = false;
  /** Who asked for this node's state this turn: answered together, at the end of the turn. */
  private readonly stateRequests = new StateRequests();
  /** This node's own presence topic, where the others send their state when it asks. */
  private readonly inbox: string;
  /** Whether the broker holds the subscription to `inbox` (said as `i: 1` in a hello or sync). */
  private hasInbox = false;
  private seq = 0;
  private running = false;
  private warm = false;
  private lastTick = 0;
  /**
   * Heartbeats on the wall clock's grid: every node's leave at about the same instant, so a node
   * hears the others' in a few wake-ups a period rather than one each.
   */
  private readonly beat: GridInterval;
  private warmTimer: NodeJS.Timeout | null = null;
  private readonly waiters = new Set<() => void>();
  /** The JSON of the meta checked last: checkMeta and joined see the same meta, in a row. */
  private checkedMeta: { meta: unknown; json: string | undefined } | null = null;
  private readonly logger = new Logger('Riverside');
  private failures: TransportFailures | undefined;

  constructor(
    @Inject(RIVERSIDE_RESOLVED_OPTIONS) private readonly options: ResolvedRiversideOptions,
    private readonly registry: SessionRegistry,
    relay: ClusterRelay,
    private readonly stats: RiversideStats,
  ) {
    this.nodeId = relay.nodeId;
    this.transport = options.transport;
    // With presence off nothing is replicated: the node behaves as a lone one toward presence,
    // and PresenceService refuses the cluster-wide questions.
    this.clustered = options.presence && !(options.transport instanceof LocalTransport);
    this.heartbeat = options.presenceHeartbeat;
    this.timeout = options.presenceTimeout;
    this.inbox = presenceInboxTopic(this.nodeId);
    this.beat = new GridInterval(this.heartbeat, () => this.tick());
    registry.setMembershipListener(this);
  }

  // ---- lifecycle --------------------------------------------------------------------------

  /** After the transport connected: listens on the shared presence topic and its own, and says hello. */
  async start(): Promise<void> {
    if (!this.clustered || this.running) return;
    this.running = true;
    const receive = (payload: Uint8Array) => this.receive(payload);
    try {
      await this.transport.subscribe(PRESENCE_TOPIC, receive);
    } catch (error) {
      this.transportFailed(`subscribing to ${PRESENCE_TOPIC}`, error);
    }
    // After the shared topic, not with it: a transport that sends both in one command could lose
    // both to a refusal of this one (RedisTransport asks again topic by topic; a custom transport
    // may not).
    try {
      await this.transport.subscribe(this.inbox, receive);
      this.hasInbox = true;
    } catch (error) {
      // Refused (a Redis ACL without <prefix>:presence:*) or the broker is down: the others answer
      // this node on the shared topic. The topic is dropped rather than kept for a resubscription
      // after every reconnect, where it would be refused (and logged) again.
      this.transportFailed(`subscribing to ${this.inbox} (states for this node will come on ${PRESENCE_TOPIC})`, error);
      await this.transport.unsubscribe(this.inbox).catch(() => undefined);
    }
    this.lastTick = monotonic();
    this.publish(encodePresence({ p: 1, t: 'hello', n: this.nodeId, ...this.inboxFlag() }));
    this.beat.start();
    // Every live node heartbeats within presenceHeartbeat: by then this node knows them all.
    this.warmTimer = setTimeout(() => {
      this.warm = true;
      this.settle();
    }, Math.ceil(this.heartbeat * 1.2));
    this.warmTimer.unref();
  }

  /** At shutdown, once every local session is gone and before the transport closes: says bye. */
  async stop(): Promise<void> {
    if (!this.running) return;
    // The leaves of the sessions closed by the shutdown go out before the bye.
    this.flush();
    this.running = false;
    this.beat.stop();
    if (this.warmTimer) clearTimeout(this.warmTimer);
    try {
      await this.transport.publish(PRESENCE_TOPIC, encodePresence({ p: 1, t: 'bye', n: this.nodeId }));
      await Promise.all([this.transport.unsubscribe(PRESENCE_TOPIC), this.transport.unsubscribe(this.inbox)]);
      this.hasInbox = false;
    } catch (error) {
      this.transportFailed('saying bye on the presence topic', error);
    }
    for (const wake of this.waiters) wake();
  }

  // ---- this node's changes (MembershipListener) -------------------------------------------

  checkMeta(meta: unknown): void {
    let json: string | undefined;
    try {
      json = meta === undefined ? undefined : JSON.stringify(meta);
    } catch (error) {
      this.stats.refusedJoins++;
      throw new PresenceMetaError(
        `Channel meta must be JSON-serializable (it is what presence shows of a member, on every node): ${(error as Error).message}`,
        { cause: error },
      );
    }
    if (meta !== undefined && json === undefined) {
      this.stats.refusedJoins++;
      throw new PresenceMetaError(`Channel meta must be JSON-serializable (it is what presence shows of a member, on every node), got a ${typeof meta}`);
    }
    const size = json === undefined ? 0 : Buffer.byteLength(json);
    if (size > this.options.maxMetaSize) {
      this.stats.refusedJoins++;
      throw new PresenceMetaError(
        `Channel meta is ${size} bytes of JSON, more than maxMetaSize (${this.options.maxMetaSize}): ` +
          'keep presence meta small (ids, a display name) or raise the maxMetaSize option',
      );
    }
    this.checkedMeta = { meta, json };
  }

  sessionOpened(connection: Connection): void {
    if (this.clustered) this.queue(JSON.stringify(['s+', connection.session.userId, connection.session.id]));
  }

  sessionClosed(connection: Connection): void {
    if (this.clustered) this.queue(JSON.stringify(['s-', connection.session.userId, connection.session.id]));
  }

  joined(connection: Connection, channel: string, meta: unknown, isNew: boolean): void {
    const { userId, id: sessionId } = connection.session;
    if (this.clustered) {
      const checked = this.checkedMeta;
      const json = checked !== null && checked.meta === meta ? checked.json : JSON.stringify(meta);
      const head = JSON.stringify(['m+', channel, userId, sessionId]);
      this.queue(json === undefined ? head : `${head.slice(0, -1)},${json}]`);
    }
    this.checkedMeta = null;
    this.events.emit({ type: isNew ? 'join' : 'update', channel, userId, sessionId, meta, node: this.nodeId });
  }

  left(connection: Connection, channel: string, meta: unknown, disconnected: boolean): void {
    const { userId, id: sessionId } = connection.session;
    const reason = disconnected ? 'disconnected' : 'left';
    if (this.clustered) this.queue(JSON.stringify(['m-', channel, userId, sessionId, reason]));
    this.events.emit({ type: 'leave', channel, userId, sessionId, meta, node: this.nodeId, reason });
  }

  /** Changes of one turn of the event loop go out as one delta. */
  private queue(op: string): void {
    // Not started or stopped: nobody to tell (a state transfer covers whatever happened before).
    if (!this.running) return;
    this.pending.push(op);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0 || !this.running) return;
    const ops = this.pending;
    this.pending = [];
    const base = this.seq;
    const messages = packOps(ops, (part) => `{"p":1,"t":"delta","n":"${this.nodeId}","s":${base + part + 1}}`);
    this.seq += messages.length;
    for (const message of messages) this.publish(message);
  }

  /** Everything this node has, as of `seq`: the answer to the hellos and syncs of this turn (see StateRequests). */
  private sendState(): void {
    const topics = this.stateRequests.take(this.replicas.size);
    if (!this.running) return;
    this.flush();
    const ops: string[] = [];
    for (const connection of this.registry.connections) ops.push(JSON.stringify(['s+', connection.session.userId, connection.session.id]));
    for (const [channel, members] of this.registry.channels()) {
      for (const [connection, meta] of members) {
        const head = JSON.stringify(['m+', channel, connection.session.userId, connection.session.id]);
        ops.push(meta === undefined ? head : `${head.slice(0, -1)},${JSON.stringify(meta)}]`);
      }
    }
    const seq = this.seq;
    const parts = packOps(ops, (part, count) => `{"p":1,"t":"state","n":"${this.nodeId}","s":${seq},"part":${part},"parts":${count}}`);
    for (const topic of topics) for (const part of parts) this.publish(part, topic);
  }

  /** What a hello or sync says of where this node wants states: on its own topic, if it has one. */
  private inboxFlag(): { i?: 1 } {
    return this.hasInbox ? { i: 1 } : {};
  }

  /** `asker` wants this node's state; `hasInbox`: it said it receives it on its own topic. */
  private scheduleState(asker: string, hasInbox: boolean): void {
    if (this.stateRequests.add(asker, hasInbox)) setImmediate(() => this.sendState());
  }

  // ---- the other nodes --------------------------------------------------------------------

  private receive(payload: Uint8Array): void {
    const message = decodePresence(payload);
    if (message === null) {
      this.transportFailed(`reading a message on ${PRESENCE_TOPIC}`, new Error('not a Riverside presence message'));
      return;
    }
    if (message.n === this.nodeId || !this.running) return;
    if (message.t === 'bye') {
      this.nodeGone(message.n);
      return;
    }
    if (this.departed.get(message.n)?.bye) return;
    const now = monotonic();
    let replica = this.replicas.get(message.n);
    if (!replica) {
      replica = new NodeReplica(message.n, now);
      replica.revived = this.departed.delete(message.n);
      this.replicas.set(message.n, replica);
      // A hello is a node's first message: it has nothing yet.
      if (message.t === 'hello') replica.syncing = false;
      else if (message.t !== 'state') this.requestSync(replica, now);
    }
    replica.lastHeard = now;
    switch (message.t) {
      case 'hello':
        this.scheduleState(message.n, message.i === 1);
        break;
      case 'sync':
        if (message.to === this.nodeId) this.scheduleState(message.n, message.i === 1);
        break;
      case 'hb':
        if (replica.syncing) {
          // Sequence 0: the node never had anything, there is no state to wait for.
          if (message.s === 0 && replica.incoming === null && replica.buffered.length === 0) this.synced(replica, 0, []);
        } else if (message.s > replica.seq) {
          this.lostTrack(replica, now);
        }
        break;
      case 'delta':
        this.receiveDelta(replica, message.s, message.ops, now);
        break;
      case 'state':
        this.receiveStatePart(replica, message);
        break;
    }
    this.settle();
  }

  private receiveDelta(replica: NodeReplica, seq: number, ops: readonly PresenceOp[], now: number): void {
    if (replica.syncing) {
      if (replica.buffered.length < MAX_BUFFERED_DELTAS) replica.buffered.push({ s: seq, ops });
      else this.lostTrack(replica, now);
      return;
    }
    if (seq <= replica.seq) return;
    if (seq === replica.seq + 1) {
      replica.apply(ops);
      replica.seq = seq;
      return;
    }
    this.lostTrack(replica, now);
    replica.buffered.push({ s: seq, ops });
  }

  private receiveStatePart(replica: NodeReplica, message: Extract<PresenceMessage, { t: 'state' }>): void {
    if (!replica.syncing && message.s <= replica.seq) return;
    let incoming = replica.incoming;
    if (incoming === null || incoming.s !== message.s || incoming.parts.length !== message.parts) {
      incoming = replica.incoming = { s: message.s, parts: new Array(message.parts), received: 0 };
    }
    if (incoming.parts[message.part] !== undefined || message.part >= message.parts) return;
    incoming.parts[message.part] = message.ops;
    if (++incoming.received < incoming.parts.length) return;
    replica.incoming = null;
    this.synced(replica, incoming.s, incoming.parts.flat() as PresenceOp[]);
  }

  /** Replaces a replica by its node's state at `seq`, then applies what was buffered after it. */
  private synced(replica: NodeReplica, seq: number, ops: readonly PresenceOp[]): void {
    if (replica.revived) {
      // Its leaves were emitted when it was declared down: its members come back as joins.
      const changes: ReplicaChange[] = [];
      replica.replace([]);
      replica.apply(ops, changes);
      replica.revived = false;
      if (this.emitsForDeadNodes(replica)) {
        for (const { channel, member } of changes) this.events.emit({ type: 'join', channel, ...member });
      }
    } else {
      replica.replace(ops);
    }
    replica.seq = seq;
    replica.syncing = false;
    replica.syncRequests = 0;
    const buffered = replica.buffered.sort((a, b) => a.s - b.s);
    replica.buffered = [];
    for (const delta of buffered) {
      if (delta.s <= replica.seq) continue;
      if (delta.s !== replica.seq + 1) {
        this.lostTrack(replica, monotonic());
        return;
      }
      replica.apply(delta.ops);
      replica.seq = delta.s;
    }
  }

  /** A node's messages were lost: its entries may be wrong until its state arrives. */
  private lostTrack(replica: NodeReplica, now: number): void {
    replica.syncing = true;
    replica.buffered = [];
    replica.incoming = null;
    this.requestSync(replica, now);
  }

  private requestSync(replica: NodeReplica, now: number): void {
    replica.syncRequestedAt = now;
    // A repeat means the state did not come on this node's own topic (lost, or a topic the broker
    // accepted but does not deliver, e.g. a NATS permission that only fails asynchronously): it is
    // asked for on the shared topic, where the hellos and heartbeats of that node do arrive.
    const ownTopic = replica.syncRequests++ === 0 ? this.inboxFlag() : {};
    this.publish(encodePresence({ p: 1, t: 'sync', n: this.nodeId, to: replica.nodeId, ...ownTopic }));
  }

  // ---- liveness ---------------------------------------------------------------------------

  private tick(): void {
    const now = monotonic();
    // This process was paused or starved (SIGSTOP, a long GC, an overloaded host): the silence of
    // the others is ours, and what they sent meanwhile is still unread. Judge nobody this time.
    const paused = now - this.lastTick > this.timeout;
    this.lastTick = now;
    this.flush();
    this.publish(encodePresence({ p: 1, t: 'hb', n: this.nodeId, s: this.seq }));
    for (const replica of [...this.replicas.values()]) {
      if (paused) replica.lastHeard = now;
      else if (now - replica.lastHeard > this.timeout) this.nodeDown(replica.nodeId, now);
      else if (replica.syncing && now - replica.syncRequestedAt > 2 * this.heartbeat) this.requestSync(replica, now);
    }
    for (const [nodeId, { at }] of this.departed) {
      if (now - at > FORGET_DEPARTED_AFTER * this.timeout) this.departed.delete(nodeId);
    }
    this.settle();
  }

  private nodeDown(nodeId: string, now: number): void {
    this.departed.set(nodeId, { at: now, bye: false });
    this.dropNode(nodeId);
  }

  private nodeGone(nodeId: string): void {
    this.departed.set(nodeId, { at: monotonic(), bye: true });
    this.dropNode(nodeId);
    this.settle();
  }

  /** Removes a node's entries; one live node tells the listeners of the members it had. */
  private dropNode(nodeId: string): void {
    const replica = this.replicas.get(nodeId);
    if (!replica) return;
    this.replicas.delete(nodeId);
    if (!this.emitsForDeadNodes() || replica.revived) return;
    for (const { channel, member } of replica.memberships()) {
      this.events.emit({ type: 'leave', channel, ...member, reason: 'node-down' satisfies PresenceLeaveReason });
    }
  }

  /**
   * Whether this node speaks for dead nodes: it has the lowest id among the live nodes, leaving
   * out `subject`, the node spoken for (a revived node does not know it was declared down).
   */
  private emitsForDeadNodes(subject?: NodeReplica): boolean {
    const now = monotonic();
    for (const replica of this.replicas.values()) {
      if (replica !== subject && replica.nodeId < this.nodeId && !this.isSuspect(replica, now)) return false;
    }
    return true;
  }

  isSuspect(replica: NodeReplica, now = monotonic()): boolean {
    return now - replica.lastHeard > SUSPECT_AFTER_HEARTBEATS * this.heartbeat;
  }

  // ---- queries ----------------------------------------------------------------------------

  /** Whether a replica's entries are current: in sequence and heard from lately. */
  isCurrent(replica: NodeReplica): boolean {
    return !replica.syncing && !this.isSuspect(replica);
  }

  /** The nodes whose entries a query cannot vouch for right now. */
  missingNodes(): string[] {
    const now = monotonic();
    const missing: string[] = [];
    for (const replica of this.replicas.values()) {
      if (replica.syncing || this.isSuspect(replica, now)) missing.push(replica.nodeId);
    }
    return missing;
  }

  /** Whether a query would have to wait: this node just started, or a node's state is on its way. */
  private unsettled(): boolean {
    if (!this.clustered || !this.running) return false;
    if (!this.warm) return true;
    for (const replica of this.replicas.values()) if (replica.syncing) return true;
    return false;
  }

  /** Resolves once nothing is awaited, or after `timeout` ms; null when nothing is awaited now. */
  settled(timeout: number): Promise<void> | null {
    if (!this.unsettled()) return null;
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeout);
      this.waiters.add(done);
    });
  }

  /** True once this node heard from the cluster for a heartbeat (always, without a cluster). */
  get isWarm(): boolean {
    return !this.clustered || this.warm;
  }

  private settle(): void {
    if (this.waiters.size === 0 || this.unsettled()) return;
    for (const wake of [...this.waiters]) wake();
  }

  /** Every member of `channel` known to this node: its own, then the other nodes'. */
  membersOf(channel: string, into: PresenceMember[]): void {
    for (const replica of this.replicas.values()) {
      const members = replica.channels.get(channel);
      if (members) for (const member of members.values()) into.push(member);
    }
  }

  // ---- transport --------------------------------------------------------------------------

  private publish(payload: Buffer, topic = PRESENCE_TOPIC): void {
    this.transport.publish(topic, payload).catch((error: unknown) => this.transportFailed(`publishing on ${topic}`, error));
  }

  /** Counted every time; logged at most once per interval (see TransportFailures). */
  private transportFailed(what: string, error: unknown): void {
    // Made on first use: the stats and logger fields are set by then, whatever the field order.
    (this.failures ??= new TransportFailures(this.stats, this.logger, 'Presence: cluster transport failed')).report(what, error);
  }

}
