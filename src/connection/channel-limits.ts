import { RiversideError } from '../errors/riverside.error.js';
import type { ResolvedRiversideOptions } from '../module/riverside-options.resolver.js';
import { idTooLongMessage, tooManyChannelsMessage } from '../riverside.messages.js';
import type { RiversideStats } from '../stats/riverside-stats.js';

/**
 * What a client can make the server hold through its handler's joins is bounded: a channel id
 * of at most `maxIdLength` UTF-8 bytes, at most `maxChannelsPerSession` channels. Throws a
 * RiversideError (`RIVERSIDE_ERR_ID_TOO_LONG`, `RIVERSIDE_ERR_TOO_MANY_CHANNELS`), counted in
 * `refusedJoins`; joining a channel the session is in (to update its meta) always passes.
 */
export function assertJoinable(
  joined: ReadonlySet<string> | null,
  channel: string,
  options: Pick<ResolvedRiversideOptions, 'maxIdLength' | 'maxChannelsPerSession'>,
  stats: RiversideStats,
): void {
  const { maxIdLength, maxChannelsPerSession } = options;
  // Three bytes per UTF-16 unit at most: short ids skip the byte count.
  if (channel.length * 3 > maxIdLength && Buffer.byteLength(channel) > maxIdLength) {
    stats.refusedJoins++;
    throw new RiversideError('RIVERSIDE_ERR_ID_TOO_LONG', idTooLongMessage('The channel id', Buffer.byteLength(channel), maxIdLength));
  }
  if (joined !== null && joined.size >= maxChannelsPerSession && !joined.has(channel)) {
    stats.refusedJoins++;
    throw new RiversideError('RIVERSIDE_ERR_TOO_MANY_CHANNELS', tooManyChannelsMessage(channel, maxChannelsPerSession));
  }
}
