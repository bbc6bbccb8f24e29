import { SetMetadata } from '@nestjs/common';
import { ON_INIT_METADATA } from '../../riverside.constants.js';

/**
 * Runs after the upgrade, before any frame reaches `@OnMessage` and before any delivery is written, even when async. A returned value is sent as the first message.
 * @publicApi
 */
export const OnInit = (): MethodDecorator => SetMetadata(ON_INIT_METADATA, true);
