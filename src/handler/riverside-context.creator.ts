import {
  type CanActivate,
  ForbiddenException,
  type NestInterceptor,
  type ParamData,
  type PipeTransform,
  type Type,
} from '@nestjs/common';
import {
  CUSTOM_ROUTE_ARGS_METADATA,
  EXCEPTION_FILTERS_METADATA,
  type ExceptionFilterMetadata,
  selectExceptionFilterMetadata,
} from '@nestjs/common/internal';
import type { NestContainer } from '@nestjs/core';
import {
  BaseExceptionFilterContext,
  ContextUtils,
  ExecutionContextHost,
  FORBIDDEN_MESSAGE,
  GuardsConsumer,
  GuardsContextCreator,
  InterceptorsConsumer,
  InterceptorsContextCreator,
  PipesConsumer,
  PipesContextCreator,
} from '@nestjs/core/internal';
import { WsException } from '@nestjs/websockets';
import { WsParamtype } from '@nestjs/websockets/enums/ws-paramtype.enum.js';
import { WsParamsFactory } from '@nestjs/websockets/factories/ws-params-factory.js';
import { PARAM_ARGS_METADATA } from '@nestjs/websockets/internal';
import { connectionOf, type Session } from '../connection/session.js';
import { errorFrameOf } from './error-frame.js';
import { isObservableLike } from './observable-reply.js';

/** A message callback as the connection calls it. */
export type SessionCallback = (value: unknown, session: Session) => unknown;

/** How one `@OnMessage` / `@OnInfo` method is wrapped. */
export interface CallbackContextOptions {
  /** What `switchToWs().getPattern()` returns: the route, else the method name. */
  readonly pattern: string;
  /** The correlation field (`@RiversideHandler({ replyRef })`), or null. */
  readonly replyRef: string | null;
}

type ParamMetadata = Record<string, { index: number; data?: ParamData; pipes: unknown[]; factory?: unknown }>;

interface ParamResolver {
  readonly index: number;
  readonly extract: (args: unknown[]) => unknown;
  readonly pipes: PipeTransform[];
  readonly metadata: { type: unknown; metatype: unknown; data: ParamData | undefined };
}

/**
 * The plain `(message, session)` signature, as param metadata: the message is the payload and
 * is what pipes transform; the session is the ws client.
 */
const PLAIN_SIGNATURE: ParamMetadata = {
  [`${WsParamtype.PAYLOAD}:0`]: { index: 0, data: undefined, pipes: [] },
  [`${WsParamtype.SOCKET}:1`]: { index: 1, data: undefined, pipes: [] },
};

/** `@UseFilters` of the class and method, method first; no global filters (as for gateways). */
class CallbackFiltersContext extends BaseExceptionFilterContext {
  create(instance: object, callback: Function, moduleKey: string): ExceptionFilterMetadata[] {
    this.moduleContext = moduleKey;
    return this.createContext(instance, callback as (...args: unknown[]) => unknown, EXCEPTION_FILTERS_METADATA).reverse();
  }

  override getGlobalMetadata<T extends unknown[]>(): T {
    return [] as unknown as T;
  }
}

/** The guards named on the method itself: the handshake runs only these (see README). */
class MethodGuardsContextCreator extends GuardsContextCreator {
  override getGlobalMetadata<T extends unknown[]>(): T {
    return [] as unknown as T;
  }

  override reflectClassMetadata<T>(): T {
    return [] as unknown as T;
  }
}

/**
 * Builds, once at boot, what Nest's `WsContextCreator` builds for a gateway's
 * `@SubscribeMessage`, for Riverside callbacks: guards, interceptors, pipes and param
 * decorators around the method, and `@UseFilters` filters around the whole, in a `'ws'`
 * execution context whose client is the `Session` and whose data is the decoded message.
 *
 * It is assembled from the same `@nestjs/core` parts as `ExternalContextCreator` rather than
 * calling it, because `ExternalContextCreator` reduces a returned Observable to its last value
 * (a stream must send each value) and turns a guard refusal into an HTTP ForbiddenException.
 */
export class RiversideContextCreator {
  private readonly guards: GuardsContextCreator;
  private readonly handshakeGuards: MethodGuardsContextCreator;
  private readonly guardsConsumer = new GuardsConsumer();
  private readonly interceptors: InterceptorsContextCreator;
  private readonly interceptorsConsumer = new InterceptorsConsumer();
  private readonly pipes: PipesContextCreator;
  private readonly pipesConsumer = new PipesConsumer();
  private readonly filters: CallbackFiltersContext;
  private readonly contextUtils = new ContextUtils();
  private readonly paramsFactory = new WsParamsFactory();

  constructor(container: NestContainer) {
    const config = container.applicationConfig;
    this.guards = new GuardsContextCreator(container, config);
    this.handshakeGuards = new MethodGuardsContextCreator(container, config);
    this.interceptors = new InterceptorsContextCreator(container, config);
    this.pipes = new PipesContextCreator(container, config);
    this.filters = new CallbackFiltersContext(container);
  }

  /**
   * The wrapped callback, or null when the method has no enhancer anywhere (global ones
   * included), no param decorator, and no correlation field: then the caller binds it directly.
   */
  create(instance: object, methodName: string, moduleKey: string, options: CallbackContextOptions): SessionCallback | null {
    const callback = (instance as Record<string, (...args: unknown[]) => unknown>)[methodName];
    const guards = this.guards.create(instance, callback, moduleKey);
    const interceptors = this.interceptors.create(instance, callback, moduleKey);
    const pipes = this.pipes.create(instance, callback, moduleKey);
    const filters = this.filters.create(instance, callback, moduleKey);
    const declared = this.contextUtils.reflectCallbackMetadata(instance, methodName, PARAM_ARGS_METADATA) as
      | ParamMetadata
      | undefined;
    const plain =
      guards.length === 0 &&
      interceptors.length === 0 &&
      pipes.length === 0 &&
      filters.length === 0 &&
      declared === undefined &&
      options.replyRef === null;
    if (plain) return null;
    const params = this.paramResolvers(instance, methodName, moduleKey, declared ?? PLAIN_SIGNATURE, pipes);
    return this.wrap(instance, callback, guards, interceptors, filters, params, options);
  }

  /**
   * The guards of an `@OnAuthenticate` method, run in an `'http'` context on the upgrade
   * request; null when it has none. Refusal throws `ForbiddenException`, as for a route.
   */
  createHandshakeGuards(
    instance: object,
    methodName: string,
    moduleKey: string,
  ): ((request: unknown, response: unknown) => Promise<void>) | null {
    const callback = (instance as Record<string, (...args: unknown[]) => unknown>)[methodName];
    const guards: CanActivate[] = this.handshakeGuards.create(instance, callback, moduleKey);
    if (guards.length === 0) return null;
    const consumer = this.guardsConsumer;
    return async (request, response) => {
      const args = [request, response, noopNext];
      if (!(await consumer.tryActivate(guards, args, instance, callback, 'http'))) {
        throw new ForbiddenException(FORBIDDEN_MESSAGE);
      }
    };
  }

  private wrap(
    instance: object,
    callback: (...args: unknown[]) => unknown,
    guards: CanActivate[],
    interceptors: NestInterceptor[],
    filters: ExceptionFilterMetadata[],
    params: ParamResolver[],
    { pattern, replyRef }: CallbackContextOptions,
  ): SessionCallback {
    const guardsConsumer = this.guardsConsumer;
    const interceptorsConsumer = this.interceptorsConsumer;
    const pipesConsumer = this.pipesConsumer;
    const argsLength = params.reduce((length, param) => Math.max(length, param.index + 1), 0);
    const classRef = instance.constructor as Type<unknown>;

    const callHandler = async (args: unknown[]): Promise<unknown> => {
      const callArgs: unknown[] = new Array(argsLength).fill(undefined);
      for (const param of params) {
        const value = param.extract(args);
        callArgs[param.index] =
          param.pipes.length === 0 ? value : await pipesConsumer.apply(value, param.metadata as never, param.pipes);
      }
      return callback.apply(instance, callArgs);
    };

    const handleError = async (error: unknown, args: unknown[], ref: unknown): Promise<unknown> => {
      const filter = selectExceptionFilterMetadata(filters, error);
      if (filter !== undefined) {
        const host = new ExecutionContextHost(args, classRef, callback);
        host.setType('ws');
        return correlate(await filter.func(error, host), replyRef, ref);
      }
      const frame = errorFrameOf(error);
      if (frame === null) throw error; // an application bug: the connection closes with 1011
      return correlate(frame, replyRef, ref);
    };

    return async (message: unknown, session: Session): Promise<unknown> => {
      // What the execution context sees: switchToWs() gives client, data, pattern.
      const args: unknown[] = [session, message, pattern];
      const ref = replyRef === null ? undefined : refOf(message, replyRef);
      try {
        if (guards.length > 0 && !(await guardsConsumer.tryActivate(guards, args, instance, callback, 'ws'))) {
          throw new WsException(FORBIDDEN_MESSAGE);
        }
        const result = await interceptorsConsumer.intercept(interceptors, args, instance, callback, () => callHandler(args), 'ws');
        if (isObservableLike(result)) {
          await connectionOf(session).sendEach(result, ref === undefined ? null : (value) => correlate(value, replyRef, ref));
          return undefined;
        }
        return correlate(result, replyRef, ref);
      } catch (error) {
        return handleError(error, args, ref);
      }
    };
  }

  private paramResolvers(
    instance: object,
    methodName: string,
    moduleKey: string,
    metadata: ParamMetadata,
    methodPipes: PipeTransform[],
  ): ParamResolver[] {
    const paramtypes = (this.contextUtils.reflectCallbackParamtypes(instance, methodName) ?? []) as unknown[];
    const callback = (instance as Record<string, Function>)[methodName];
    const contextFactory = this.contextUtils.getContextFactory('ws', instance, callback);
    this.pipes.setModuleContext(moduleKey);
    return Object.keys(metadata).map((key) => {
      const { index, data, pipes: paramPipes, factory } = metadata[key];
      const ownPipes = this.pipes.createConcreteContext(paramPipes as never);
      const metatype = paramtypes[index];
      if (key.includes(CUSTOM_ROUTE_ARGS_METADATA)) {
        const extractCustom = this.contextUtils.getCustomFactory(factory as never, data as never, contextFactory);
        return {
          index,
          extract: (args: unknown[]) => extractCustom(...args),
          pipes: [...methodPipes, ...ownPipes],
          metadata: { type: 'custom', metatype, data },
        };
      }
      const type = Number(this.contextUtils.mapParamType(key));
      const factoryOfParams = this.paramsFactory;
      return {
        index,
        extract: (args: unknown[]) => factoryOfParams.exchangeKeyForValue(type, data as never, args),
        // Class, method and global pipes transform the message, never the Session itself
        // (a ValidationPipe would try to rebuild it as a DTO); its own param pipes still run.
        pipes: type === WsParamtype.SOCKET ? ownPipes : [...methodPipes, ...ownPipes],
        metadata: { type, metatype, data },
      };
    });
  }
}

function noopNext(): void {}

function refOf(message: unknown, field: string): unknown {
  return typeof message === 'object' && message !== null && Object.prototype.hasOwnProperty.call(message, field)
    ? (message as Record<string, unknown>)[field]
    : undefined;
}

/** The reply with the correlation field added, when both exist and the reply is a plain object. */
function correlate(value: unknown, field: string | null, ref: unknown): unknown {
  if (field === null || ref === undefined || !isPlainObject(value)) return value;
  return { ...value, [field]: ref };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}
