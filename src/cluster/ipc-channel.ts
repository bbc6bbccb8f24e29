/**
 * One end of an IPC channel between a cluster primary and a worker: `process` in a worker,
 * a `cluster.Worker` (or `ChildProcess`) in the primary. The hub and the transport work over
 * both of Node's IPC serializations: with the default `'json'`, payloads travel as base64
 * strings; over a channel that carries structured-clone data (`serialization: 'advanced'`, or a
 * worker_threads port), as bytes, neither
 * encoded nor decoded. The two ends find out which at the hello (see {@link IpcHubMessage}).
 * @publicApi
 */
export interface IpcChannel {
  /** False once the channel is closed (`process.connected`, `worker.isConnected()`'s field). */
  readonly connected?: boolean;
  /**
   * Sends a message; `callback` must be called once it has left, or failed to (as Node's IPC
   * does): until then the hub counts it as not read by the worker (see
   * `IpcHubOptions.maxWorkerBacklog`).
   */
  send(message: unknown, callback?: (error: Error | null) => void): boolean;
  /**
   * Listens for messages; IpcTransport also listens for 'disconnect' where the channel emits it
   * (`process`, `cluster.Worker`), to fail the subscriptions that wait for the hub's answer.
   */
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

/**
 * What the workers and the primary's hub say to each other. Every message carries
 * `riverside`, so that the app's own `process.send()` messages are never mistaken for ours.
 * A worker sends what it did in one event-loop turn as one `ops` message: `ops` is a flat list
 * of `'s', topic` (subscribe), `'u', topic` (unsubscribe) and `'p', topic, payload`
 * (publish), applied in order, topics already prefixed; when it holds subscriptions, the hub
 * answers `ack` with its `id` once they hold. A connection storm thus costs a few IPC messages
 * per turn, not several per connection.
 *
 * A payload is a base64 string, or a Uint8Array on a channel that carries bytes: the worker's
 * hello holds a `probe` Uint8Array, which reaches the hub as one only over such a channel (JSON
 * turns it into an object); the hub then answers with a `probe` of its own, and from that ack on
 * both ends send bytes. A hub or worker that knows nothing of probes keeps to base64.
 */
export type IpcHubMessage =
  /** worker -> hub: "I am an IpcTransport", answered with `ack` (connect() waits for it). */
  | { riverside: 'hello'; id: number; probe?: unknown }
  /** worker -> hub: one turn's subscriptions, unsubscriptions and publications. */
  | { riverside: 'ops'; id: number; ops: (string | Uint8Array)[] }
  /** worker -> hub: the transport is closing; forget every topic of this channel. */
  | { riverside: 'bye' }
  /** hub -> worker: what its topics received, `[topic, payload, ...]`. */
  | { riverside: 'msg'; batch: (string | Uint8Array)[] }
  | { riverside: 'ack'; id: number; probe?: unknown };

/** What a hello carries to find out whether the channel carries bytes. */
export function bytesProbe(): Uint8Array {
  return new Uint8Array(0);
}

/** A payload as the channel carries it: bytes as they are, or base64. */
export function asChannelPayload(payload: string | Uint8Array, bytes: boolean): string | Uint8Array {
  if (typeof payload === 'string') return bytes ? Buffer.from(payload, 'base64') : payload;
  return bytes ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('base64');
}

/** Whether `message` is one of ours (the channel also carries the app's own messages). */
export function isIpcHubMessage(message: unknown): message is IpcHubMessage {
  return typeof message === 'object' && message !== null && typeof (message as { riverside?: unknown }).riverside === 'string';
}

/**
 * Sends without throwing: a channel that closed meanwhile reports to `sent` (or nowhere), never
 * as an 'error' event. `sent` is called once the message has left, or failed to.
 */
export function sendQuietly(channel: IpcChannel, message: IpcHubMessage, sent: (error: Error | null) => void = ignoreSendError): boolean {
  if (channel.connected === false) return false;
  try {
    channel.send(message, sent);
    return true;
  } catch {
    return false;
  }
}

function ignoreSendError(): void {
  // The channel closed under us: the hub forgets a dead worker, a worker dies with its primary.
}
