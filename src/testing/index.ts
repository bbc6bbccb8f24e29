// nestjs-riverside/testing: helpers for end-to-end tests of Riverside handlers.
export {
  TestClient,
  type TestClientOptions,
  type ReceivedFrame,
  type ObservedClose,
  HandshakeRefusedError,
} from './test-client.js';
export { MemoryBus, MemoryBusTransport } from './memory-bus.transport.js';
export { useFreePort, type OverridableModuleBuilder } from './use-free-port.js';
