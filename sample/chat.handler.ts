import {
  AuthError,
  type AuthRequest,
  DeliveryService,
  OnAuthenticate,
  OnInfo,
  OnInit,
  OnMessage,
  OnTerminate,
  PresenceService,
  RiversideHandler,
  type Session,
  type TerminateReason,
} from 'nestjs-riverside';

/** What a browser sends (seeds 000 and 003): join, leave, say to a channel, say to a user. */
export type ChatCommand =
  | { join: string }
  | { leave: string }
  | { say: string; to: string }
  | { say: string; toUser: string }
  | { heartbeat: true };

/** What the server pushes through @OnInfo (see ChatController). */
export interface KickInfo {
  kick: string;
}

const NAME = /^[\w.-]{1,32}$/;
export const LOBBY = 'lobby';

/**
 * A chat over plain JSON frames: `ws://host/chat?name=ann`. Everyone starts in the lobby; a
 * message to a channel needs membership (exws_channels closes with 3000 otherwise).
 */
@RiversideHandler({ path: '/chat' })
export class ChatHandler {
  constructor(
    private readonly delivery: DeliveryService,
    private readonly presence: PresenceService,
  ) {}

  @OnAuthenticate()
  authenticate(req: AuthRequest) {
    const name = req.queries.name;
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new AuthError(400).withHeader('X-Chat-Error', 'name must be 1-32 letters, digits, _ . -');
    }
    return { userId: name };
  }

  @OnInit()
  init(session: Session) {
    this.join(session, LOBBY);
    return { welcome: session.userId, channels: session.channels() };
  }

  @OnMessage()
  onMessage(command: ChatCommand, session: Session) {
    if (typeof command !== 'object' || command === null) return session.close(3000, 'invalid payload');
    if ('join' in command) return this.join(session, String(command.join));
    if ('leave' in command) return this.leave(session, String(command.leave));
    if ('say' in command && 'to' in command) return this.sayInChannel(session, String(command.to), String(command.say));
    if ('say' in command && 'toUser' in command) return this.sayToUser(session, String(command.toUser), String(command.say));
    if ('heartbeat' in command) return undefined; // any frame keeps the connection from idling out
    return session.close(3000, 'invalid payload');
  }

  @OnInfo()
  onInfo(info: KickInfo, session: Session) {
    session.send({ kicked: info.kick });
    session.close(4001, 'kicked');
  }

  @OnTerminate()
  terminate(_reason: TerminateReason, session: Session) {
    // Still a member here: tell the channels this session is leaving.
    for (const channel of session.channels()) {
      this.delivery.deliver({ channel }, { event: 'left', channel, user: session.userId });
    }
  }

  private async join(session: Session, channel: string) {
    if (session.join(channel)) this.delivery.deliver({ channel }, { event: 'joined', channel, user: session.userId });
    // Everyone in the channel, on every node.
    const { members } = await this.delivery.members(channel);
    return { joined: channel, members: members.map((member) => member.userId) };
  }

  private leave(session: Session, channel: string) {
    if (session.leave(channel) > 0) this.delivery.deliver({ channel }, { event: 'left', channel, user: session.userId });
    return { left: channel };
  }

  private sayInChannel(session: Session, channel: string, text: string) {
    if (!this.delivery.isMember(session, channel)) return session.close(3000, 'cannot send to channel');
    this.delivery.deliver({ channel }, { from: session.userId, channel, say: text });
    return undefined;
  }

  private async sayToUser(session: Session, user: string, text: string) {
    const message = { from: session.userId, toUser: user, say: text };
    this.delivery.deliver({ user }, message);
    // Every device of the sender (this one included) shows the conversation too.
    if (user !== session.userId) this.delivery.deliver({ user: session.userId }, message);
    // deliver() counts this node's sockets only: whether the user is connected anywhere is presence's answer.
    return (await this.presence.isOnline(user)).online ? undefined : { undelivered: user };
  }
}
