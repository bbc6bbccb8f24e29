// `npm run soak`: a bounded cluster soak. Starts SOAK_NODES (3) node processes on one broker
// (SOAK_TRANSPORT: redis (default, REDIS_URL; several comma-separated: a ShardedTransport over
// them) or nats (NATS_URL)), then for SOAK_SECONDS (60) sends deliveries with sequence numbers
// to users, sessions and channels from one sender per node, while receiver sessions come and go
// and join and leave channels. Every receiver checks each (sender, target) stream: a delivery it
// was owed and never got is lost; one seen twice is duplicated; one older than what it already
// saw is reordered. Prints the figures as one JSON line and exits 1 unless all three are 0.
//
// A receiver is owed the deliveries sent after it heard of its first join (for its user and
// session) or of its join of a channel, until it starts to leave. Then, before the check, it
// fences each stream it was owed: one more delivery on that stream from the same sender, and it
// waits for it (at most SOAK_FENCE_MS, 30000). Order is kept per stream, so a delivery owed and
// not seen once the fence has arrived is lost, not late: a loaded machine makes deliveries
// slower (the figure maxFenceMs says how much), never a false loss. A fence that does not come
// within SOAK_FENCE_MS counts in fenceTimeouts, and what it fenced as lost.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const NODES = Number(process.env.SOAK_NODES ?? 3);
const TRANSPORT = process.env.SOAK_TRANSPORT ?? 'redis';
const FENCE_MS = Number(process.env.SOAK_FENCE_MS ?? 30_000);
const RECEIVERS = 24;
const USERS = 8;
const CHANNELS = ['ch0', 'ch1', 'ch2', 'ch3'];
const TICK_MS = 25;
const BURST = 8;
const PREFIX = `soak-${process.pid}-${Date.now()}`;
const NODE_SCRIPT = fileURLToPath(new URL('./node.mjs', import.meta.url));

const figures = {
  transport: TRANSPORT,
  nodes: NODES,
  seconds: SECONDS,
  issued: 0,
  owed: 0,
  received: 0,
  lost: 0,
  duplicated: 0,
  reordered: 0,
  sessions: 0,
  joins: 0,
  leaves: 0,
  fences: 0,
  fenceTimeouts: 0,
  maxFenceMs: 0,
};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const pick = (list) => list[Math.floor(Math.random() * list.length)];

function startNode() {
  const child = spawn(process.execPath, [NODE_SCRIPT], {
    env: { ...process.env, SOAK_TRANSPORT: TRANSPORT, SOAK_PREFIX: PREFIX },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('a soak node did not start within 30 s')), 30_000);
    child.once('exit', (code) => reject(new Error(`a soak node exited with ${code} before it was ready`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        const { url } = JSON.parse(line);
        if (typeof url === 'string') {
          clearTimeout(timer);
          resolve({ child, url });
        }
      } catch {
        // Not the ready line.
      }
    });
  });
}

function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** A receiver session: what it is owed, per stream, and what it saw. */
class Receiver {
  constructor(node, user) {
    this.node = node;
    this.user = user;
    this.sid = randomBytes(4).toString('hex');
    this.welcomed = false;
    this.channels = new Set();
    this.retiring = false;
    /** A churn step (join, leave, retire) is under way: one at a time. */
    this.busy = false;
    this.owed = new Map();
    this.seen = new Map();
    this.acks = new Map();
    /** Stream key -> the fence awaited on it: its number and what to call once it is seen. */
    this.fences = new Map();
  }

  async connect() {
    this.ws = await open(`${this.node.url}?user=${this.user}&sid=${this.sid}`);
    figures.sessions++;
    this.ws.on('message', (data) => this.onFrame(JSON.parse(data.toString())));
    // An answer that will never come must not hold the soak.
    this.ws.on('close', () => {
      for (const resolve of this.acks.values()) resolve();
      this.acks.clear();
    });
  }

  onFrame(message) {
    const ack = message.joined ?? message.left;
    if (ack !== undefined) {
      this.acks.get(ack)?.();
      return;
    }
    figures.received++;
    let seen = this.seen.get(message.k);
    if (!seen) this.seen.set(message.k, (seen = { max: 0, all: new Set() }));
    if (seen.all.has(message.n)) figures.duplicated++;
    else if (message.n < seen.max) figures.reordered++;
    seen.all.add(message.n);
    seen.max = Math.max(seen.max, message.n);
    const fence = this.fences.get(message.k);
    if (fence !== undefined && seen.max >= fence.n) fence.arrived();
  }

  request(message, key) {
    return new Promise((resolve) => {
      if (this.ws.readyState !== WebSocket.OPEN) return resolve();
      this.acks.set(key, resolve);
      this.ws.send(JSON.stringify(message));
    });
  }

  async join(channel) {
    await this.request({ join: channel }, channel);
    figures.joins++;
    // Owed from now on: everything sent after the client heard of its join.
    this.welcomed = true;
    this.channels.add(channel);
  }

  /** Stops being owed the channel, fences what is on its way, checks it, then leaves. */
  async leave(channel) {
    this.channels.delete(channel);
    const filter = (key) => key.endsWith(`|c:${channel}`);
    await this.fence(filter);
    this.check(filter);
    await this.request({ leave: channel }, channel);
    figures.leaves++;
  }

  /**
   * Sends one more delivery on each stream this receiver was owed (matching `filter`) and waits
   * until it has seen it, or SOAK_FENCE_MS.
   */
  async fence(filter) {
    const keys = [...this.owed.keys()].filter(filter);
    const started = Date.now();
    await Promise.all(
      keys.map(
        (key) =>
          new Promise((resolve) => {
            const timer = setTimeout(() => {
              figures.fenceTimeouts++;
              if (process.env.SOAK_DEBUG) console.error(`fence timed out on ${key} at ${this.user}/${this.sid} on ${this.node.url}`);
              resolve();
            }, FENCE_MS);
            const arrived = () => {
              clearTimeout(timer);
              this.fences.delete(key);
              resolve();
            };
            this.fences.set(key, { n: issue(key), arrived });
            figures.fences++;
          }),
      ),
    );
    figures.maxFenceMs = Math.max(figures.maxFenceMs, Date.now() - started);
  }

  owes(key) {
    if (this.retiring || !this.welcomed) return false;
    const target = key.slice(key.indexOf('|') + 1);
    if (target === `u:${this.user}` || target === `s:${this.user}/${this.sid}`) return true;
    return target.startsWith('c:') && this.channels.has(target.slice(2));
  }

  owe(key, n) {
    let owed = this.owed.get(key);
    if (!owed) this.owed.set(key, (owed = []));
    owed.push(n);
    figures.owed++;
  }

  check(filter = () => true) {
    for (const [key, owed] of this.owed) {
      if (!filter(key)) continue;
      const seen = this.seen.get(key)?.all;
      for (const n of owed) {
        if (seen?.has(n)) continue;
        figures.lost++;
        if (process.env.SOAK_DEBUG) console.error(`lost ${key} #${n} at ${this.user}/${this.sid} on ${this.node.url}, max seen ${this.seen.get(key)?.max}`);
      }
      this.owed.delete(key);
    }
  }

  async retire() {
    this.retiring = true;
    await this.fence(() => true);
    this.check();
    this.ws.close();
  }
}

const nodes = await Promise.all(Array.from({ length: NODES }, startNode));
const senders = await Promise.all(nodes.map((node) => open(`${node.url}?user=sender&sid=${randomBytes(4).toString('hex')}`)));
const receivers = new Set();
const sequence = new Map();

/** The delivery target of a stream key (`s<sender>|u:<user>`, `|s:<user>/<sid>` or `|c:<channel>`). */
function targetOf(key) {
  const stream = key.slice(key.indexOf('|') + 1);
  const id = stream.slice(2);
  if (stream.startsWith('u:')) return { user: id };
  if (stream.startsWith('c:')) return { channel: id };
  const slash = id.indexOf('/');
  return { session: [id.slice(0, slash), id.slice(slash + 1)] };
}

/** The next delivery of a stream: owed by every receiver that owes the stream now. */
function next(streamKey) {
  const n = (sequence.get(streamKey) ?? 0) + 1;
  sequence.set(streamKey, n);
  for (const candidate of receivers) if (candidate.owes(streamKey)) candidate.owe(streamKey, n);
  figures.issued++;
  return [targetOf(streamKey), { k: streamKey, n }];
}

/** Sends one delivery on a stream at once, from its sender; returns its number. */
function issue(streamKey) {
  const delivery = next(streamKey);
  senders[Number(streamKey.slice(1, streamKey.indexOf('|')))].send(JSON.stringify({ burst: [delivery] }));
  return delivery[1].n;
}

async function newReceiver() {
  const receiver = new Receiver(pick(nodes), `u${Math.floor(Math.random() * USERS)}`);
  await receiver.connect();
  receivers.add(receiver);
  await receiver.join(pick(CHANNELS));
  return receiver;
}

await Promise.all(Array.from({ length: RECEIVERS }, newReceiver));
const churn = new Set();
const deadline = Date.now() + SECONDS * 1000;
while (Date.now() < deadline) {
  const live = [...receivers].filter((receiver) => !receiver.retiring);
  senders.forEach((sender, index) => {
    const burst = [];
    for (let i = 0; i < BURST; i++) {
      const receiver = pick(live);
      const kind = Math.random();
      const stream = kind < 0.4 ? `c:${pick(CHANNELS)}` : kind < 0.7 ? `u:${receiver.user}` : `s:${receiver.user}/${receiver.sid}`;
      burst.push(next(`s${index}|${stream}`));
    }
    sender.send(JSON.stringify({ burst }));
  });
  // Churn: a session goes (and another comes), or a session joins or leaves a channel.
  const idle = live.filter((receiver) => !receiver.busy);
  if (Math.random() < 0.1 && idle.length > 0) {
    const receiver = pick(idle);
    receiver.busy = true;
    const step =
      Math.random() < 0.4
        ? receiver.retire().then(() => {
            receivers.delete(receiver);
            return newReceiver();
          })
        : receiver.channels.size > 1 || (receiver.channels.size === 1 && Math.random() < 0.3)
          ? receiver.leave(pick([...receiver.channels]))
          : receiver.join(pick(CHANNELS.filter((channel) => !receiver.channels.has(channel))) ?? 'ch0');
    churn.add(step);
    step.finally(() => {
      receiver.busy = false;
      churn.delete(step);
    });
  }
  await sleep(TICK_MS);
}
await Promise.all(churn);
await Promise.all([...receivers].map((receiver) => receiver.retire()));
for (const sender of senders) sender.close();
for (const { child } of nodes) child.kill('SIGTERM');
process.stdout.write(`${JSON.stringify(figures)}\n`);
process.exit(figures.lost + figures.duplicated + figures.reordered === 0 ? 0 : 1);
