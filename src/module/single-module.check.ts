import type { Type } from '@nestjs/common';
import type { ModulesContainer } from '@nestjs/core';
import { RiversideError } from '../errors/riverside.error.js';
import { duplicateModuleMessage } from '../riverside.messages.js';

/**
 * Each `RiversideModule.forRoot()` is a module of its own (ConfigurableModuleBuilder gives
 * every call a unique id), so importing it in two modules would start two servers that both
 * serve every handler. Run from a provider factory: the container is fully scanned by then,
 * and the boot fails before anything listens.
 */
export function assertSingleRiversideModule(container: ModulesContainer, riversideModule: Type<unknown>): void {
  const riversides = new Set([...container.values()].filter((module) => module.metatype === riversideModule));
  if (riversides.size <= 1) return;
  // A module's resolved `imports` also hold every global module: read what it declared instead.
  const importers = [...container.values()]
    .filter((module) => declaredImports(module.metatype).some((imported) => (imported as { module?: unknown })?.module === riversideModule))
    .map((module) => module.metatype.name);
  throw new RiversideError('RIVERSIDE_ERR_DUPLICATE_MODULE', duplicateModuleMessage(riversides.size, importers));
}

/** The `imports` of a module's `@Module()` metadata (Nest's MODULE_METADATA.IMPORTS key). */
function declaredImports(metatype: Type<unknown>): unknown[] {
  const reflect = Reflect as unknown as { getMetadata(key: string, target: object): unknown };
  return (reflect.getMetadata('imports', metatype) as unknown[] | undefined) ?? [];
}
