import { SetMetadata } from '@nestjs/common';
import { ON_MESSAGE_METADATA } from '../../riverside.constants.js';

/**
 * Receives each decoded frame with the session, one at a time in arrival order. A returned value other than undefined is sent back.
 * @publicApi
 */
export const OnMessage = (): MethodDecorator => SetMetadata(ON_MESSAGE_METADATA, true);
