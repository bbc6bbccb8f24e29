import { Logger, type OnModuleInit } from '@nestjs/common';
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
 * What the browser sends:
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
 * the recipient of a direct message is connected to no node, `{ error }` for a bad command that does not
 * warrant a disconnect, and `{ kicked }` just before an administrator closes the connection.
 * `at` is the server's clock in milliseconds since the epoch.
 */
export type ChatCommand =
  | { join: string }
  | { leave: string }
  | { say: string; to: string }
  | { say: string; toUser: string }
  | { heartbeat: true };

/** What the server pushes to a session through @OnInfo (see ChatController's kick route). */
export interface KickInfo {
  kick: string;
}

/** User and channel names: 1-32 letters, digits, `_`, `.` or `-`. */
const NAME = /^[\w.-]{1,32}$/;
const NAME_RULE = '1-32 letters, digits, _ . -';
/** Every connection starts in this channel. */
export const LOBBY = 'lobby';

/**
 * The chat endpoint, `ws://host/chat?name=ann`. The name in the query string is the user id
 * (a real app would check a token or a session cookie here). A user may be connected from
 * several tabs or devices at once: each connection is its own session of the same user.
 * Several nodes of the chat (CHAT_REDIS_URL, see AppModule) form one chat: member lists and
 * direct messages span them all.
 */
@RiversideHandler({ path: '/chat' })
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

  /** One call per frame, in arrival order; a returned value is sent back to this connection. */
  @OnMessage()
  onMessage(command: ChatCommand, session: Session) {
    if (typeof command !== 'object' || command === null) return session.close(3000, 'invalid payload');
    if ('join' in command) return this.join(session, command.join);
    if ('leave' in command) return this.leave(session, command.leave);
    if ('say' in command && 'to' in command) return this.sayInChannel(session, String(command.to), String(command.say));
    if ('say' in command && 'toUser' in command) return this.sayToUser(session, String(command.toUser), String(command.say));
    if ('heartbeat' in command) return undefined; // any frame counts as activity for the idle timeout
    return session.close(3000, 'invalid payload');
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

  private join(session: Session, channel: unknown) {
    if (!isChannelName(channel)) return invalidChannel('join', channel);
    try {
      session.join(channel);
    } catch (error) {
      // The module's maxChannelsPerSession option bounds what one client can make us hold.
      if (error instanceof RiversideError && error.code === 'RIVERSIDE_ERR_TOO_MANY_CHANNELS') {
        return { error: `cannot join "${channel}": you are in as many channels as allowed; leave one first`, join: channel };
      }
      throw error;
    }
    return this.memberNames(channel).then((members) => ({ joined: channel, members }));
  }

  private leave(session: Session, channel: unknown) {
    if (!isChannelName(channel)) return invalidChannel('leave', channel);
    // Once left, the session no longer hears the channel: its ack is the `{ left }` reply.
    session.leave(channel);
    return { left: channel };
  }

  private sayInChannel(session: Session, channel: string, text: string) {
    // Only members may speak in a channel: anything else is a misbehaving client.
    if (!this.delivery.isMember(session, channel)) return session.close(3000, 'cannot send to channel');
    this.delivery.deliver({ channel }, { from: session.userId, channel, say: text, at: Date.now() });
    return undefined;
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

/** A bad channel name is a user's typo, not an attack: answer with an error, keep the connection. */
function invalidChannel(command: 'join' | 'leave', channel: unknown) {
  const shown = typeof channel === 'string' ? JSON.stringify(channel.slice(0, 40)) : typeof channel;
  return { error: `cannot ${command} ${shown}: a channel name is ${NAME_RULE}`, [command]: channel };
}
