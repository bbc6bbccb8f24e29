import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, ModuleRef, type NestContainer } from '@nestjs/core';
import { RIVERSIDE_CODEC, type Codec } from '../codec/codec.interface.js';
import { resolveCodec } from '../codec/codec.resolver.js';
import { InvalidHandlerClassError } from '../errors/invalid-handler-class.error.js';
import type { ResolvedRiversideOptions } from '../module/riverside-options.resolver.js';
import { resolvePath, resolveSubprotocols } from '../module/riverside-options.resolver.js';
import { RIVERSIDE_RESOLVED_OPTIONS } from '../riverside.constants.js';
import { handlerMethodLabel } from '../riverside.messages.js';
import type { HandlerDefinition } from './handler-definition.js';
import { type DeclaredRoute, MessageRouter, routePattern } from './message-router.js';
import { RiversideContextCreator } from './riverside-context.creator.js';
import {
  CALLBACK_DECORATOR,
  CALLBACK_METADATA,
  type CallbackKind,
  HandlerMetadataAccessor,
} from './handler-metadata.accessor.js';

const CALLBACK_KINDS = Object.keys(CALLBACK_METADATA) as CallbackKind[];

/**
 * Finds every `@RiversideHandler` provider once, at module init, and builds the frozen
 * path -> handler table the server dispatches through. Nothing is reflected per frame.
 */
@Injectable()
export class HandlerExplorer implements OnModuleInit {
  private readonly logger = new Logger('Riverside');
  private table: ReadonlyMap<string, HandlerDefinition> = new Map();
  private onlyCodec: Codec | null = null;
  private exploring: Promise<ReadonlyMap<string, HandlerDefinition>> | null = null;
  private contextCreator: RiversideContextCreator | null = null;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly accessor: HandlerMetadataAccessor,
    private readonly moduleRef: ModuleRef,
    @Inject(RIVERSIDE_RESOLVED_OPTIONS) private readonly options: ResolvedRiversideOptions,
    @Inject(RIVERSIDE_CODEC) private readonly defaultCodec: Codec,
  ) {}

  /**
   * The codec of every handler when they all share one (nearly every app), else null: a
   * delivery then encodes once, without first visiting every recipient for its codec.
   */
  get soleCodec(): Codec | null {
    return this.onlyCodec;
  }

  /** Handlers by normalized path. */
  get handlers(): ReadonlyMap<string, HandlerDefinition> {
    return this.table;
  }

  async onModuleInit(): Promise<void> {
    await this.explore();
  }

  /** Builds the table once; the server awaits it too, whichever module hook runs first. */
  explore(): Promise<ReadonlyMap<string, HandlerDefinition>> {
    return (this.exploring ??= this.buildTable());
  }

  private async buildTable(): Promise<ReadonlyMap<string, HandlerDefinition>> {
    const table = new Map<string, HandlerDefinition>();
    const classByPath = new Map<string, Function>();
    for (const wrapper of this.discovery.getProviders()) {
      const { metatype, instance } = wrapper;
      if (!metatype || typeof metatype !== 'function' || wrapper.isAlias) continue;
      const handlerOptions = this.accessor.getHandlerOptions(metatype);
      if (!handlerOptions) continue;
      if (!wrapper.isDependencyTreeStatic() || !instance) {
        throw new InvalidHandlerClassError(
          `Handler class "${metatype.name}" is request- or transient-scoped (itself or through a dependency). ` +
            'A Riverside handler lives as long as the application: make it and its dependencies singletons.',
        );
      }
      const definition = await this.define(
        metatype.name,
        instance as object,
        handlerOptions,
        this.moduleRefOf(wrapper),
        wrapper.host?.token ?? '',
      );
      const existing = table.get(definition.path);
      if (existing) {
        if (classByPath.get(definition.path) === metatype) continue; // one class listed in two modules' providers
        throw new InvalidHandlerClassError(
          `Handler classes "${existing.className}" and "${definition.className}" both serve path "${definition.path}". ` +
            'Give one of them another path: @RiversideHandler({ path: "/other" }).',
        );
      }
      table.set(definition.path, definition);
      classByPath.set(definition.path, metatype);
    }
    if (table.size === 0) {
      this.logger.warn('RiversideModule found no @RiversideHandler provider: add your handler class to a module\'s providers.');
    }
    this.table = table;
    const codecs = new Set([...table.values()].map((handler) => handler.codec));
    this.onlyCodec = codecs.size === 1 ? (codecs.values().next().value as Codec) : null;
    return table;
  }

  /**
   * The ModuleRef of the module that declares the handler: a codec class named by the handler
   * is resolved there, so it can inject that module's providers (not only RiversideModule's).
   */
  private moduleRefOf(wrapper: { host?: { providers: Map<unknown, { instance: unknown }> } | null }): ModuleRef {
    const own = wrapper.host?.providers.get(ModuleRef)?.instance;
    return own instanceof ModuleRef ? own : this.moduleRef;
  }

  private async define(
    className: string,
    instance: object,
    handlerOptions: { path?: unknown; codec?: unknown; subprotocols?: unknown; replyRef?: unknown },
    moduleRef: ModuleRef,
    moduleKey: string,
  ): Promise<HandlerDefinition> {
    const prototype = Object.getPrototypeOf(instance) as Record<string, unknown>;
    const found: Partial<Record<CallbackKind, string>> = {};
    const messageMethods: string[] = [];
    for (const methodName of this.scanner.getAllMethodNames(prototype)) {
      const method = prototype[methodName];
      if (typeof method !== 'function') continue;
      for (const kind of CALLBACK_KINDS) {
        if (!this.accessor.isCallback(kind, method)) continue;
        if (kind === 'message') {
          // Several @OnMessage methods are routes; MessageRouter.compile checks them.
          messageMethods.push(methodName);
          found.message ??= methodName;
          continue;
        }
        if (found[kind]) {
          throw new InvalidHandlerClassError(
            `Handler class "${className}" has two ${CALLBACK_DECORATOR[kind]} methods, "${found[kind]}" and "${methodName}". ` +
              `Keep one ${CALLBACK_DECORATOR[kind]} per handler class.`,
          );
        }
        found[kind] = methodName;
      }
    }
    const replyRef = resolveReplyRef(className, handlerOptions.replyRef);
    const direct = (name: string) => (prototype[name] as (...args: unknown[]) => unknown).bind(instance);
    const bind = (kind: CallbackKind) => {
      const name = found[kind];
      return name ? direct(name) : null;
    };
    // @OnMessage and @OnInfo get Nest's enhancers; a method without any keeps the direct call.
    const enhanced = (name: string, pattern: string) =>
      this.contextCreatorOf().create(instance, name, moduleKey, { pattern, replyRef }) ?? direct(name);
    const label = (kind: CallbackKind) => handlerMethodLabel(className, found[kind] ?? kind);
    const routed = messageMethods.length > 1 || messageMethods.some((name) => this.routeOf(prototype, name) !== null);
    const router = routed
      ? MessageRouter.compile(
          className,
          messageMethods.map((name): DeclaredRoute => {
            const route = this.routeOf(prototype, name);
            return {
              methodName: name,
              route,
              target: { callback: enhanced(name, routePattern(route, name)), label: handlerMethodLabel(className, name) },
            };
          }),
        )
      : null;
    const handshakeGuards = found.authenticate
      ? this.contextCreatorOf().createHandshakeGuards(instance, found.authenticate, moduleKey)
      : null;
    const codec =
      handlerOptions.codec === undefined
        ? this.defaultCodec
        : await resolveCodec(handlerOptions.codec as Codec, moduleRef, `@RiversideHandler({ codec }) of ${className}`);
    return Object.freeze({
      className,
      path: resolvePath(`@RiversideHandler({ path }) of ${className}`, handlerOptions.path, this.options.path),
      codec,
      codecName: codec.constructor?.name ?? 'codec',
      subprotocols:
        handlerOptions.subprotocols === undefined
          ? this.options.subprotocols
          : resolveSubprotocols(`@RiversideHandler({ subprotocols }) of ${className}`, handlerOptions.subprotocols),
      authenticate: bind('authenticate') as HandlerDefinition['authenticate'],
      init: bind('init'),
      message: router === null && found.message ? enhanced(found.message, found.message) : null,
      router,
      info: found.info ? enhanced(found.info, found.info) : null,
      handshakeGuards,
      terminate: bind('terminate'),
      labels: Object.freeze({
        authenticate: label('authenticate'),
        init: label('init'),
        message: label('message'),
        info: label('info'),
        terminate: label('terminate'),
      }),
    });
  }

  private routeOf(prototype: Record<string, unknown>, methodName: string) {
    return this.accessor.getMessageRoute(prototype[methodName] as Function);
  }

  /**
   * Built on first use, at boot. A provider cannot inject Nest's container; @nestjs/websockets
   * is handed it by NestApplication, and ModuleRef holds it (as a protected field).
   */
  private contextCreatorOf(): RiversideContextCreator {
    if (this.contextCreator === null) {
      const container = (this.moduleRef as unknown as { container?: NestContainer }).container;
      if (!container) throw new Error('Riverside could not reach the Nest container to build enhancers: unsupported @nestjs/core version.');
      this.contextCreator = new RiversideContextCreator(container);
    }
    return this.contextCreator;
  }
}

function resolveReplyRef(className: string, value: unknown): string | null {
  if (value === undefined) return null;
  if (typeof value !== 'string' || value === '') {
    throw new InvalidHandlerClassError(
      `@RiversideHandler({ replyRef }) of ${className} must be a non-empty field name (e.g. 'ref'), got ${JSON.stringify(value)}.`,
    );
  }
  return value;
}
