import { InvalidHandlerClassError } from '../errors/invalid-handler-class.error.js';
import type { Session } from '../connection/session.js';
import type { MessageRoute } from './decorators/on-message.decorator.js';

/** A message callback as the connection calls it. */
export type MessageCallback = (message: unknown, session: Session) => unknown;

/** Where a routed message goes: the callback and its 'Class.method()' label for logs. */
export interface RouteTarget {
  readonly callback: MessageCallback;
  readonly label: string;
}

/** One `@OnMessage` method as declared, before compilation. */
export interface DeclaredRoute {
  readonly methodName: string;
  readonly route: MessageRoute | null;
  readonly target: RouteTarget;
}

const HAS_KEY = 0;
const FIELD_EQUALS = 1;

/**
 * The `@OnMessage` routes of one class, compiled at boot into parallel arrays: per frame, at
 * most one own-property check (and one comparison) per route, in declaration order, then the
 * fallback. No reflection and no allocation.
 */
export class MessageRouter {
  private constructor(
    private readonly kinds: readonly number[],
    private readonly keys: readonly string[],
    private readonly values: readonly unknown[],
    private readonly targets: readonly RouteTarget[],
    private readonly fallback: RouteTarget | null,
  ) {}

  /** The target of this message, or null when no route takes it and there is no fallback. */
  match(message: unknown): RouteTarget | null {
    if (typeof message === 'object' && message !== null) {
      const keys = this.keys;
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i];
        if (!Object.prototype.hasOwnProperty.call(message, key)) continue;
        if (this.kinds[i] === HAS_KEY || (message as Record<string, unknown>)[key] === this.values[i]) return this.targets[i];
      }
    }
    return this.fallback;
  }

  /**
   * Compiles the routes of a class; throws an `InvalidHandlerClassError` naming the class and
   * methods for a malformed route, two routes that can never be told apart, or two fallbacks.
   */
  static compile(className: string, declared: readonly DeclaredRoute[]): MessageRouter {
    const kinds: number[] = [];
    const keys: string[] = [];
    const values: unknown[] = [];
    const targets: RouteTarget[] = [];
    const owners: string[] = [];
    let fallback: DeclaredRoute | null = null;
    for (const entry of declared) {
      const where = `@OnMessage(${describeRoute(entry.route)}) on ${className}.${entry.methodName}()`;
      if (entry.route === null) {
        if (fallback !== null) {
          throw new InvalidHandlerClassError(
            `Handler class "${className}" has two fallback @OnMessage() methods, "${fallback.methodName}" and "${entry.methodName}". ` +
              "Keep one bare @OnMessage(); give the other a route: @OnMessage('join') or @OnMessage({ type: 'join' }).",
          );
        }
        fallback = entry;
        continue;
      }
      const [kind, key, value] = parseRoute(entry.route, where);
      for (let i = 0; i < keys.length; i++) {
        if (keys[i] !== key) continue;
        // An earlier "has key" route takes every message a later route on that key would match.
        if (kinds[i] === HAS_KEY || (kind === FIELD_EQUALS && values[i] === value)) {
          throw new InvalidHandlerClassError(
            `Handler class "${className}": the routes of "${owners[i]}" and "${entry.methodName}" can never be told apart ` +
              `(${where} only sees messages the earlier route already took). Give them distinct property names or field values.`,
          );
        }
      }
      kinds.push(kind);
      keys.push(key);
      values.push(value);
      targets.push(entry.target);
      owners.push(entry.methodName);
    }
    return new MessageRouter(kinds, keys, values, targets, fallback?.target ?? null);
  }
}

/** The pattern a route shows as `switchToWs().getPattern()`: its key or field value, else the method name. */
export function routePattern(route: MessageRoute | null, methodName: string): string {
  if (route === null) return methodName;
  if (typeof route === 'string') return route;
  return String(Object.values(route)[0]);
}

function parseRoute(route: MessageRoute, where: string): [kind: number, key: string, value: unknown] {
  if (typeof route === 'string') {
    if (route === '') throw new InvalidHandlerClassError(`${where}: a route name must not be empty.`);
    return [HAS_KEY, route, undefined];
  }
  const entries = typeof route === 'object' && route !== null && !Array.isArray(route) ? Object.entries(route) : [];
  if (entries.length !== 1) {
    throw new InvalidHandlerClassError(
      `${where}: a route is a property name ('join') or exactly one field and its value ({ type: 'join' }).`,
    );
  }
  const [key, value] = entries[0];
  if (!(typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value)))) {
    throw new InvalidHandlerClassError(`${where}: the field value must be a string, a finite number or a boolean.`);
  }
  return [FIELD_EQUALS, key, value];
}

function describeRoute(route: MessageRoute | null): string {
  if (route === null) return '';
  try {
    return JSON.stringify(route) ?? String(route);
  } catch {
    return String(route);
  }
}
