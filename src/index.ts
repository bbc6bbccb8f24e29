// The public API of nestjs-riverside. Everything else is internal.
export { RiversideModule } from './module/riverside.module.js';
export { RIVERSIDE_MODULE_OPTIONS } from './module/riverside.module-definition.js';
export type {
  RiversideModuleOptions,
  RiversideTlsOptions,
  RiversideWsOptions,
  TransmissionLimit,
  RiversideMetricsOptions,
} from './module/riverside-options.interface.js';
export { env, type EnvRef } from './module/env.js';

export {
  RiversideHandler,
  type RiversideHandlerOptions,
  OnAuthenticate,
  OnInit,
  OnMessage,
  type MessageRoute,
  OnInfo,
  OnTerminate,
} from './handler/decorators/index.js';

export { AuthRequest, type PeerAddress, type BasicCredentials } from './auth/auth-request.js';
export { AuthError } from './auth/auth-error.js';
export { bearerTokenFromSubprotocol } from './auth/bearer-subprotocol.js';
export { HandshakeResponse } from './server/handshake-guards.js';
export type { AuthResult } from './auth/auth-result.interface.js';

export { Session, type ScheduledInfo } from './connection/session.js';
export type { TerminateReason } from './connection/terminate-reason.js';
export { CloseCode } from './connection/close-codes.js';

export {
  type Codec,
  type FrameType,
  INVALID_MESSAGE,
  RIVERSIDE_CODEC,
  JsonCodec,
  RawTextCodec,
  RawBinaryCodec,
  MessagePackCodec,
  Frame,
  FrameList,
} from './codec/index.js';

export { DeliveryService } from './delivery/delivery.service.js';
export type { DeliveryTarget, RiversideId } from './delivery/delivery-target.js';
export { PresenceService } from './cluster/presence/presence.service.js';
export type {
  PresenceMember,
  PresenceSession,
  PresenceCompleteness,
  PresenceMembers,
  PresenceCount,
  PresenceOnline,
  PresenceSessions,
  PresenceQueryOptions,
  PresenceEvent,
  PresenceLeaveReason,
  PresenceListener,
} from './cluster/presence/presence.types.js';

export {
  type RiversideTransport,
  type TransportMessageHandler,
  RIVERSIDE_TRANSPORT,
} from './cluster/transport.interface.js';
export { LocalTransport } from './cluster/local.transport.js';
export { RedisTransport } from './cluster/redis.transport.js';
export type {
  RedisClientLike,
  RedisTransportOptions,
  RedisTransportUrlOptions,
  RedisTransportClientOptions,
  RedisTransportClientsOptions,
} from './cluster/redis-transport.options.js';
export { NatsTransport } from './cluster/nats.transport.js';
export type {
  NatsTransportOptions,
  NatsTransportConnectionOptions,
  NatsTransportServersOptions,
  NatsConnectOptions,
  NatsAuthenticator,
  NatsConnectionLike,
  NatsSubscriptionLike,
} from './cluster/nats-transport.options.js';
export { natsSubject } from './cluster/nats-subjects.js';
export { ShardedTransport, type ShardedTransportOptions } from './cluster/sharded.transport.js';
export { IpcTransport, type IpcTransportOptions } from './cluster/ipc.transport.js';
export { IpcHub, type IpcHubOptions } from './cluster/ipc-hub.js';
export type { IpcChannel } from './cluster/ipc-channel.js';
export { runRiversideWorkers, type RiversideWorkersOptions, type RiversideWorkers } from './cluster/run-riverside-workers.js';

export { RiversideServer } from './server/riverside.server.js';
export { RiversideAdapter } from './server/riverside.adapter.js';
export { RiversideStats } from './stats/riverside-stats.js';
export { RiversideHealthIndicator, type RiversideHealthResult } from './stats/riverside-health.indicator.js';

export {
  RiversideError,
  type RiversideErrorCode,
  InvalidOptionsError,
  InvalidHandlerClassError,
  EncodeError,
  MissingPackageError,
  HandlerTimeoutError,
  PresenceMetaError,
  PresenceDisabledError,
} from './errors/index.js';
