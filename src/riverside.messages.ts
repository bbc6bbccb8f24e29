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
