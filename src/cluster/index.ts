export { IpcHub } from './ipc-hub.js';
export { type IpcChannel } from './ipc-channel.js';
export { IpcTransport, type IpcTransportOptions } from './ipc.transport.js';
export { runRiversideWorkers, type RiversideWorkersOptions, type RiversideWorkers } from './run-riverside-workers.js';
