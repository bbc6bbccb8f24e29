import { SetMetadata } from '@nestjs/common';
import { ON_INFO_METADATA } from '../../riverside.constants.js';

/**
 * Receives in-app messages sent with `delivery.info()` or `session.sendAfter()`, in the same per-connection order as frames.
 * @publicApi
 */
export const OnInfo = (): MethodDecorator => SetMetadata(ON_INFO_METADATA, true);
