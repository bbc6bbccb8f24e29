import { HttpException } from '@nestjs/common';
import { WsException } from '@nestjs/websockets';

/**
 * The default answer to an exception no `@UseFilters` filter took, or null for an exception
 * that is an application bug (the connection then closes with 1011, as before):
 *
 * - `WsException('text')` -> `{ error: { message: 'text' } }`
 * - `WsException(object)` -> `{ error: object }`
 * - an `HttpException` below 500 (a guard's `UnauthorizedException`, the throttler's 429, a
 *   `ValidationPipe`'s 400) -> `{ error: { status, message } }`, `message` being the one of
 *   its response body (the validation messages for a ValidationPipe).
 */
export function errorFrameOf(error: unknown): { error: unknown } | null {
  if (error instanceof WsException) {
    const body = error.getError();
    return { error: typeof body === 'object' && body !== null ? body : { message: body } };
  }
  if (error instanceof HttpException && error.getStatus() < 500) {
    const response = error.getResponse();
    const message =
      typeof response === 'string'
        ? response
        : typeof response === 'object' && response !== null && 'message' in response
          ? (response as { message: unknown }).message
          : error.message;
    return { error: { status: error.getStatus(), message } };
  }
  return null;
}
