import {
  AuthError,
  type AuthRequest,
  OnAuthenticate,
  OnInit,
  OnMessage,
  OnTerminate,
  RiversideHandler,
  type Session,
  type TerminateReason,
} from 'nestjs-riverside';

interface EchoState {
  echoed: number;
}

/** Echoes every JSON message back to its sender, after a `?name=` handshake check. */
@RiversideHandler({ path: '/echo' })
export class EchoHandler {
  @OnAuthenticate()
  authenticate(req: AuthRequest) {
    const name = req.queries.name;
    if (typeof name !== 'string' || name === '') throw new AuthError(400);
    return { userId: name, state: { echoed: 0 } };
  }

  @OnInit()
  init(session: Session<EchoState>) {
    return { welcome: session.userId };
  }

  @OnMessage()
  onMessage(message: unknown, session: Session<EchoState>) {
    session.state.echoed++;
    return { echo: message, count: session.state.echoed };
  }

  @OnTerminate()
  terminate(reason: TerminateReason, session: Session<EchoState>) {
    console.log(`${session} left after ${session.state.echoed} message(s):`, reason);
  }
}
