import { RiversideError } from './riverside.error.js';

/**
 * Thrown when a feature needs an optional peer dependency that is not installed.
 * @publicApi
 */
export class MissingPackageError extends RiversideError {
  constructor(
    readonly packageName: string,
    feature: string,
  ) {
    super(
      'RIVERSIDE_ERR_MISSING_PACKAGE',
      `${feature} needs the optional package "${packageName}", which is not installed. Run: npm install ${packageName}`,
    );
  }
}
