import { type AuthResult, OnAuthenticate, OnMessage, RiversideHandler } from 'nestjs-riverside';

/**
 * The handlers tests use when what they are about is not the handler: the server answers, and
 * a round trip shows the connection works.
 */

/** On the root path, sends every message back as it came. */
@RiversideHandler()
export class EchoHandler {
  @OnMessage()
  onMessage(message: unknown) {
    return message;
  }
}

/** On /echo, accepts every handshake (as user 'echo') and sends every message back. */
@RiversideHandler({ path: '/echo' })
export class AuthenticatedEchoHandler {
  @OnAuthenticate()
  authenticate(): AuthResult {
    return { userId: 'echo' };
  }

  @OnMessage()
  echo(message: unknown) {
    return message;
  }
}
