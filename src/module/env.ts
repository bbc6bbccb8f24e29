const kEnvRef = Symbol.for('riverside.env_ref');

/**
 * A value read from an environment variable when the module boots, with a default for when
 * the variable is unset (Riverside's `{:system, "VAR", default}`).
 * @publicApi
 */
export interface EnvRef<T> {
  readonly [kEnvRef]: true;
  readonly name: string;
  readonly defaultValue: T;
}

/**
 * Reads an option from the environment at boot: `port: env('WS_PORT', 3000)`.
 * Accepted by `port`, `tls.enabled`, `tls.cert` and `tls.key`. A numeric string is a port;
 * `'true'` / `'false'` is a boolean.
 * @publicApi
 */
export function env<T extends string | number | boolean>(name: string, defaultValue: T): EnvRef<T> {
  return { [kEnvRef]: true, name, defaultValue };
}

export function isEnvRef(value: unknown): value is EnvRef<unknown> {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kEnvRef] === true;
}

/** The raw value behind a maybe-EnvRef, and where it came from for error messages. */
export function readEnvRef(value: unknown, environment: NodeJS.ProcessEnv): { value: unknown; source: string } {
  if (!isEnvRef(value)) return { value, source: '' };
  const raw = environment[value.name];
  if (raw === undefined) return { value: value.defaultValue, source: ` (default of env ${value.name})` };
  return { value: raw, source: ` (from env ${value.name})` };
}
