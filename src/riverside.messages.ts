/** Texts of the errors and warnings that appear in more than one place. */

export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  if (Array.isArray(value)) return `[${value.map(describeValue).join(', ')}]`;
  const name = value.constructor?.name;
  if (name && name !== 'Object') return `a ${name}`;
  try {
    return JSON.stringify(value);
  } catch {
    return 'an object';
  }
}

export function invalidOptionMessage(option: string, value: unknown, expected: string, source = ''): string {
  return `RiversideModule: invalid option "${option}": expected ${expected}, got ${describeValue(value)}${source}.`;
}

export function handlerMethodLabel(className: string, methodName: string): string {
  return `${className}.${methodName}()`;
}

export function unknownOptionMessage(option: string, value: unknown, known: readonly string[]): string {
  return `RiversideModule: unknown option "${option}" (got ${describeValue(value)}); the known options there are ${known.join(', ')}.`;
}

export function invalidDeliveryTargetMessage(target: unknown): string {
  let shown: string;
  try {
    shown = JSON.stringify(target) ?? String(target);
  } catch {
    shown = String(target);
  }
  return (
    `Invalid DeliveryTarget ${shown}: name exactly one of { user }, { session: [userId, sessionId] } or { channel }; ` +
    'to reach several, deliver once per target.'
  );
}

export function duplicateModuleMessage(count: number, importers: readonly string[]): string {
  return (
    `RiversideModule.forRoot() is imported ${count} times (by ${importers.join(', ')}): each import would start its own server. ` +
    'Import it once, in the root module; it is global, so handlers and DeliveryService work in every module.'
  );
}

export function portTakenByRiversideMessage(port: number): string {
  return (
    `listen EADDRINUSE: port ${port} is already taken by Riverside's WebSocket server (the "port" option of RiversideModule.forRoot). ` +
    "Give Riverside another port, or port: 'http' to serve WebSockets on the app's own port."
  );
}

export function tooManyChannelsMessage(channel: string, limit: number): string {
  return (
    `Cannot join "${channel.slice(0, 64)}": the session is already in maxChannelsPerSession (${limit}) channels. ` +
    'Leave one first, or raise the maxChannelsPerSession option.'
  );
}

export function idTooLongMessage(what: string, bytes: number, limit: number): string {
  return `${what} is ${bytes} bytes of UTF-8, over maxIdLength (${limit}). Use a shorter id, or raise the maxIdLength option.`;
}

/** The message of a thrown value, whatever was thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
