import { SetMetadata } from '@nestjs/common';
import { ON_TERMINATE_METADATA } from '../../riverside.constants.js';

/**
 * Runs exactly once when a connection whose `@OnInit` started ends, with the `TerminateReason`.
 * @publicApi
 */
export const OnTerminate = (): MethodDecorator => SetMetadata(ON_TERMINATE_METADATA, true);
