import {
  AuthError,
  type AuthRequest,
  DeliveryService,
  OnAuthenticate,
  OnInfo,
  OnInit,
  OnMessage,
  OnTerminate,
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
 * the recipient of a direct message is offline, `{ error }` for a bad command that does not
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
 */
@RiversideHandler({ path: '/chat' })
export class ChatHandler {
  constructor(private readonly delivery: DeliveryService) {}

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
    this.join(session, LOBBY);
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

  /** Runs once per connection, however it ended: closed by either side, dropped, timed out. */
  @OnTerminate()
  terminate(_reason: TerminateReason, session: Session) {
    // The session is still a member of its channels here: tell each one it is leaving.
    for (const channel of session.channels()) this.announce(channel, 'left', session, session.id);
  }

  private join(session: Session, channel: unknown) {
    if (!isChannelName(channel)) return invalidChannel('join', channel);
    let joined: boolean;
    try {
      joined = session.join(channel);
    } catch (error) {
      // The module's maxChannelsPerSession option bounds what one client can make us hold.
      if (error instanceof RiversideError && error.code === 'RIVERSIDE_ERR_TOO_MANY_CHANNELS') {
        return { error: `cannot join "${channel}": you are in as many channels as allowed; leave one first`, join: channel };
      }
      throw error;
    }
    if (joined) this.announce(channel, 'joined', session);
    return { joined: channel, members: this.memberNames(channel) };
  }

  private leave(session: Session, channel: unknown) {
    if (!isChannelName(channel)) return invalidChannel('leave', channel);
    // Once left, the session no longer hears the channel: its ack is the `{ left }` reply.
    if (session.leave(channel) > 0) this.announce(channel, 'left', session);
    return { left: channel };
  }

  private sayInChannel(session: Session, channel: string, text: string) {
    // Only members may speak in a channel: anything else is a misbehaving client.
    if (!this.delivery.isMember(session, channel)) return session.close(3000, 'cannot send to channel');
    this.delivery.deliver({ channel }, { from: session.userId, channel, say: text, at: Date.now() });
    return undefined;
  }

  private sayToUser(session: Session, user: string, text: string) {
    const message = { from: session.userId, toUser: user, say: text, at: Date.now() };
    const reached = this.delivery.deliver({ user }, message);
    // Every device of the sender (this one included) shows the conversation too.
    if (user !== session.userId) this.delivery.deliver({ user: session.userId }, message);
    return reached === 0 ? { undelivered: user } : undefined;
  }

  /**
   * Tells a channel's members who joined or left, with the member list as it is now, so a page
   * can simply replace the list it shows. `leavingSessionId` leaves out a session that is
   * about to go but is still registered.
   */
  private announce(channel: string, event: 'joined' | 'left', session: Session, leavingSessionId?: string) {
    const members = this.memberNames(channel, leavingSessionId);
    this.delivery.deliver({ channel }, { event, channel, user: session.userId, members, at: Date.now() });
  }

  /** The distinct users in a channel, sorted: a user with two tabs open is listed once. */
  private memberNames(channel: string, excludeSessionId?: string): string[] {
    const names = new Set<string>();
    for (const member of this.delivery.members(channel)) {
      if (member.sessionId !== excludeSessionId) names.add(member.userId);
    }
    return [...names].sort();
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
