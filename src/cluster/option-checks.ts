import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import { describeValue } from '../riverside.messages.js';

/**
 * Boot-time checks shared by the options of the cluster helpers (`IpcHub`, `IpcTransport`,
 * `runRiversideWorkers`): every failure is an InvalidOptionsError that names the helper, the
 * option, what was expected and what was given.
 */
export class OptionChecks {
  constructor(private readonly owner: string) {}

  /** Throws for `option`. */
  invalid(option: string, value: unknown, expected: string): never {
    throw new InvalidOptionsError(option, `${this.owner}: invalid option "${option}": expected ${expected}, got ${describeValue(value)}.`);
  }

  /** `options` is an object (`expected` says which) whose every key is one of `known`. */
  knownKeys(options: unknown, known: readonly string[], expected = 'an object'): void {
    if (typeof options !== 'object' || options === null || Array.isArray(options)) this.invalid('options', options, expected);
    for (const [key, value] of Object.entries(options as object)) {
      if (!known.includes(key)) this.invalid(key, value, `one of the known options (${known.join(', ')})`);
    }
  }

  /** `value` is absent or a positive integer of `unit` (e.g. 'ms', 'bytes'). */
  optionalPositiveInteger(option: string, value: unknown, unit: string): void {
    if (value !== undefined && !(Number.isInteger(value) && (value as number) > 0)) this.invalid(option, value, `a positive integer (${unit})`);
  }
}
