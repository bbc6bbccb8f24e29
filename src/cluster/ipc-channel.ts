/**
 * One end of an IPC channel between a cluster primary and a worker: `process` in a worker,
 * a `cluster.Worker` (or `ChildProcess`) in the primary. Messages must survive Node's default
 * `'json'` IPC serialization, so the hub and the transport only ever send plain JSON.
 * @publicApi
 */
export interface IpcChannel {
  /** False once the channel is closed (`process.connected`, `worker.isConnected()`'s field). */
  readonly connected?: boolean;
  send(message: unknown, callback?: (error: Error | null) => void): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

/**
 * What the workers and the primary's hub say to each other. Every message carries
 * `riverside`, so that the app's own `process.send()` messages are never mistaken for ours.
 * A worker sends what it did in one event-loop turn as one `ops` message: `ops` is a flat list
 * of `'s', topic` (subscribe), `'u', topic` (unsubscribe) and `'p', topic, base64 payload`
 * (publish), applied in order, topics already prefixed; when it holds subscriptions, the hub
 * answers `ack` with its `id` once they hold. A connection storm thus costs a few IPC messages
 * per turn, not several per connection.
 */
export type IpcHubMessage =
  /** worker -> hub: "I am an IpcTransport", answered with `ack` (connect() waits for it). */
  | { riverside: 'hello'; id: number }
  /** worker -> hub: one turn's subscriptions, unsubscriptions and publications. */
  | { riverside: 'ops'; id: number; ops: string[] }
  /** worker -> hub: the transport is closing; forget every topic of this channel. */
  | { riverside: 'bye' }
  /** hub -> worker: what its topics received, `[topic, base64 payload, ...]`. */
  | { riverside: 'msg'; batch: string[] }
  | { riverside: 'ack'; id: number };

/** Whether `message` is one of ours (the channel also carries the app's own messages). */
export function isIpcHubMessage(message: unknown): message is IpcHubMessage {
  return typeof message === 'object' && message !== null && typeof (message as { riverside?: unknown }).riverside === 'string';
}

/** Sends without throwing: a channel that closed meanwhile reports to `callback`, never as an 'error' event. */
export function sendQuietly(channel: IpcChannel, message: IpcHubMessage): boolean {
  if (channel.connected === false) return false;
  try {
    channel.send(message, ignoreSendError);
    return true;
  } catch {
    return false;
  }
}

function ignoreSendError(): void {
  // The channel closed under us: the hub forgets a dead worker, a worker dies with its primary.
}
