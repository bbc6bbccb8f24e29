import {
  type ArgumentsHost,
  type CanActivate,
  Catch,
  type ExceptionFilter,
  type ExecutionContext,
  Injectable,
  Logger,
  type OnModuleInit,
  UseFilters,
  UseGuards,
  ValidationPipe,
} from '@nestjs/common';
import { ConnectedSocket, MessageBody } from '@nestjs/websockets';
import { IsString, ValidateIf } from 'class-validator';
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
  RiversideError,
  RiversideHandler,
  type Session,
  type TerminateReason,
} from 'nestjs-riverside';

/**
 * The chat protocol: plain JSON frames, one object per frame, told apart by their keys.
 *
 * What the browser sends (each key is an `@OnMessage` route of ChatHandler; any other frame
 * closes the connection with 3000, the app's `invalidMessage: 'close'`):
 *
 * | frame                           | effect                                                    |
 * |---------------------------------|-----------------------------------------------------------|
 * | `{ "join": "rust" }`            | join a channel; answered with `{ joined, members }`       |
 * | `{ "leave": "rust" }`           | leave it; answered with `{ left }`                        |
 * | `{ "say": "hi", "to": "rust" }` | say something in a channel you are a member of            |
 * | `{ "say": "hi", "toUser": "bob" }` | a direct message to every device of bob              |
 * | `{ "heartbeat": true }`         | nothing: it only keeps the connection from idling out     |
 *
 * What the server pushes: `{ welcome, channels }` once connected, `{ event: 'joined' | 'left',
 * channel, user, members, at }` to a channel's members when its membership changes, `{ from,
 * channel, say, at }` in a channel, `{ from, toUser, say, at }` direct, `{ undelivered }` when
 * the recipient of a direct message is connected to no node, `{ error }` for a bad command that
 * does not warrant a disconnect (a string for a bad channel name; `{ status: 400, message: [...] }`,
 * the validation messages, for a malformed `say`), and `{ kicked }` just before an administrator
 * closes the connection.
 * `at` is the server's clock in milliseconds since the epoch.
 */
export type ChatCommand = JoinCommand | LeaveCommand | SayCommand | { heartbeat: true };

/** `{ join }` and `{ leave }`: checked by the channel pipes below. */
export interface JoinCommand {
  join: string;
}
export interface LeaveCommand {
  leave: string;
}

/** `{ say, to }` into a channel or `{ say, toUser }` to a user: validated by a ValidationPipe. */
export class SayCommand {
  @IsString()
  say!: string;

  @ValidateIf((command: SayCommand) => command.toUser === undefined)
  @IsString()
  to?: string;

  @ValidateIf((command: SayCommand) => command.to === undefined)
  @IsString()
  toUser?: string;
}

/** What the server pushes to a session through @OnInfo (see ChatController's kick route). */
export interface KickInfo {
  kick: string;
}

/** User and channel names: 1-32 letters, digits, `_`, `.` or `-`. */
const NAME = /^[\w.-]{1,32}$/;
const NAME_RULE = '1-32 letters, digits, _ . -';
/** Every connection starts in this channel. */
export const LOBBY = 'lobby';

/** A channel name the client got wrong: a typo, not an attack. */
class InvalidChannelError extends Error {
  constructor(
    readonly command: 'join' | 'leave',
    readonly channel: unknown,
  ) {
    super(`invalid channel name for ${command}`);
  }
}

/** Checks the channel name of `{ join }` / `{ leave }` and lets the message through as it is. */
function channelPipe(command: 'join' | 'leave') {
  return {
    transform(message: Record<string, unknown>) {
      if (!isChannelName(message[command])) throw new InvalidChannelError(command, message[command]);
      return message;
    },
  };
}

/**
 * Answers a bad channel name with `{ error, join | leave }` and keeps the connection: a filter's
 * return value is the reply. (Other exceptions keep Riverside's defaults.)
 */
@Catch(InvalidChannelError)
class InvalidChannelFilter implements ExceptionFilter {
  catch(error: InvalidChannelError, _host: ArgumentsHost) {
    return invalidChannel(error.command, error.channel);
  }
}

/**
 * Only members may speak in a channel: anything else is a misbehaving client, closed with 3000
 * (the guard closes before refusing, so the refusal's error frame is never sent). A direct
 * message (`toUser`) passes.
 */
@Injectable()
export class ChannelMemberGuard implements CanActivate {
  constructor(private readonly delivery: DeliveryService) {}

  canActivate(context: ExecutionContext): boolean {
    const session = context.switchToWs().getClient<Session>();
    const { to } = context.switchToWs().getData<Partial<SayCommand>>();
    if (to === undefined || this.delivery.isMember(session, String(to))) return true;
    session.close(3000, 'cannot send to channel');
    return false;
  }
}

/**
 * The chat endpoint, `ws://host/chat?name=ann`. The name in the query string is the user id
 * (a real app would check a token or a session cookie here). A user may be connected from
 * several tabs or devices at once: each connection is its own session of the same user.
 * Several nodes of the chat (CHAT_REDIS_URL, see AppModule) form one chat: member lists and
 * direct messages span them all.
 */
@RiversideHandler({ path: '/chat' })
@UseFilters(InvalidChannelFilter)
export class ChatHandler implements OnModuleInit {
  private readonly logger = new Logger('Chat');

  constructor(
    private readonly delivery: DeliveryService,
    private readonly presence: PresenceService,
  ) {}

  /**
   * Membership changes are announced from presence events: each comes once across the cluster,
   * on the node of the session (a join, a leave, a closed connection) or, when a node dies, on one
   * surviving node for each of its members.
   */
  onModuleInit() {
    this.presence.on((event) => {
      if (event.type === 'update') return;
      this.announce(event.channel, event.type === 'join' ? 'joined' : 'left', event.userId).catch(() => undefined);
    });
  }

  /** Runs before the WebSocket upgrade: throwing an AuthError refuses it with an HTTP status. */
  @OnAuthenticate()
  authenticate(req: AuthRequest) {
    const name = req.queries.name;
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new AuthError(400).withHeader('X-Chat-Error', `name must be ${NAME_RULE}`);
    }
    return { userId: name };
  }

  /** The first frame a new connection receives is the value returned here. */
  @OnInit()
  init(session: Session) {
    session.join(LOBBY);
    return { welcome: session.userId, channels: session.channels() };
  }

  /**
   * One route per command, chosen by its key; frames of a connection are handled one at a time
   * in arrival order, and a returned value is sent back to this connection.
   */
  @OnMessage('join')
  onJoin(@MessageBody(channelPipe('join')) command: JoinCommand, @ConnectedSocket() session: Session) {
    try {
      session.join(command.join);
    } catch (error) {
      // The module's maxChannelsPerSession option bounds what one client can make us hold.
      if (error instanceof RiversideError && error.code === 'RIVERSIDE_ERR_TOO_MANY_CHANNELS') {
        return { error: `cannot join "${command.join}": you are in as many channels as allowed; leave one first`, join: command.join };
      }
      throw error;
    }
    return this.memberNames(command.join).then((members) => ({ joined: command.join, members }));
  }

  @OnMessage('leave')
  onLeave(@MessageBody(channelPipe('leave')) command: LeaveCommand, @ConnectedSocket() session: Session) {
    // Once left, the session no longer hears the channel: its ack is the `{ left }` reply.
    session.leave(command.leave);
    return { left: command.leave };
  }

  @OnMessage('say')
  @UseGuards(ChannelMemberGuard)
  onSay(@MessageBody(new ValidationPipe()) command: SayCommand, @ConnectedSocket() session: Session) {
    if (command.to !== undefined) {
      this.delivery.deliver({ channel: command.to }, { from: session.userId, channel: command.to, say: command.say, at: Date.now() });
      return undefined;
    }
    return this.sayToUser(session, String(command.toUser), command.say);
  }

  /** Any frame counts as activity for the idle timeout: this one does nothing else. */
  @OnMessage('heartbeat')
  onHeartbeat() {
    return undefined;
  }

  /** Infos come from the server side (DeliveryService.info), never from the client. */
  @OnInfo()
  onInfo(info: KickInfo, session: Session) {
    session.send({ kicked: info.kick });
    session.close(4001, 'kicked');
  }

  /**
   * Runs once per connection, however it ended: closed by either side, dropped, timed out. The
   * channels it leaves are announced by the presence listener above.
   */
  @OnTerminate()
  terminate(reason: TerminateReason, session: Session) {
    const why = typeof reason === 'string' ? reason : reason.kind;
    this.logger.debug(`${session.userId} left the chat (${why}) after ${session.channels().length} channel(s)`);
  }

  private async sayToUser(session: Session, user: string, text: string) {
    const message = { from: session.userId, toUser: user, say: text, at: Date.now() };
    this.delivery.deliver({ user }, message);
    // Every device of the sender (this one included) shows the conversation too.
    if (user !== session.userId) this.delivery.deliver({ user: session.userId }, message);
    // deliver() counts this node's sockets only; whether the user is connected anywhere is presence's answer.
    return (await this.presence.isOnline(user)).online ? undefined : { undelivered: user };
  }

  /**
   * Tells a channel's members who joined or left, with the member list as this node sees it now,
   * so a page can simply replace the list it shows. (A change made on another node in the same
   * few milliseconds may be missing from this list; its own announcement follows with it.)
   */
  private async announce(channel: string, event: 'joined' | 'left', user: string) {
    const members = await this.memberNames(channel);
    this.delivery.deliver({ channel }, { event, channel, user, members, at: Date.now() });
  }

  /** The distinct users in a channel on every node, sorted: a user with two tabs open is listed once. */
  private async memberNames(channel: string): Promise<string[]> {
    const { members } = await this.presence.members(channel);
    return [...new Set(members.map((member) => member.userId))].sort();
  }
}

function isChannelName(value: unknown): value is string {
  return typeof value === 'string' && NAME.test(value);
}

/** The answer to a bad channel name: an error, and the connection stays. */
function invalidChannel(command: 'join' | 'leave', channel: unknown) {
  const shown = typeof channel === 'string' ? JSON.stringify(channel.slice(0, 40)) : typeof channel;
  return { error: `cannot ${command} ${shown}: a channel name is ${NAME_RULE}`, [command]: channel };
}
