import { createRequire } from 'node:module';
import { MissingPackageError } from './errors/missing-package.error.js';

/**
 * Whether a require/import error says that this very package is not installed; a package
 * that is there but fails to load must report its own error instead.
 */
export function isPackageMissing(error: unknown, packageName: string): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') && String(message).includes(packageName);
}

/**
 * Loads an optional peer dependency (CommonJS or dual package) when a feature needs it, so that
 * apps that do not use the feature need not install it.
 * @throws MissingPackageError naming the package and the feature, when it is not installed.
 */
export function requireOptional<T>(packageName: string, feature: string): T {
  try {
    return createRequire(import.meta.url)(packageName) as T;
  } catch (error) {
    if (isPackageMissing(error, packageName)) throw new MissingPackageError(packageName, feature);
    throw error;
  }
}
