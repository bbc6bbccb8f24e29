import { SetMetadata } from '@nestjs/common';
import { ON_AUTHENTICATE_METADATA } from '../../riverside.constants.js';

/**
 * Runs before the upgrade with the `AuthRequest`; returns an `AuthResult` (or a Promise of one) to accept, throws `AuthError` to refuse with an HTTP status.
 * @publicApi
 */
export const OnAuthenticate = (): MethodDecorator => SetMetadata(ON_AUTHENTICATE_METADATA, true);
