import type { RiversideTransport } from './transport.interface.js';

/**
 * The single-node transport, used unless another is configured: every session lives in this
 * process, so there is nothing to carry and every call is a no-op.
 * @publicApi
 */
export class LocalTransport implements RiversideTransport {
  async connect(): Promise<void> {}
  async publish(): Promise<void> {}
  async subscribe(): Promise<void> {}
  async unsubscribe(): Promise<void> {}
  async close(): Promise<void> {}
}
