import { MemoryBus, MemoryBusTransport } from 'nestjs-riverside/testing';
import { runTransportContract } from './transport.contract.js';

runTransportContract('MemoryBusTransport', async () => {
  const bus = new MemoryBus();
  const a = new MemoryBusTransport(bus, 'test');
  const b = new MemoryBusTransport(bus, 'test');
  const otherPrefix = new MemoryBusTransport(bus, 'other');
  return {
    a,
    b,
    otherPrefix,
    cleanup: async () => {
      await Promise.all([a.close(), b.close(), otherPrefix.close()]);
    },
  };
});
