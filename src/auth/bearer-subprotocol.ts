import type { IncomingMessage } from 'node:http';

const PREFIX = 'bearer.';

/**
 * The token a browser offered as the subprotocol `bearer.<token>` (a browser's WebSocket
 * cannot set an Authorization header), or null. Shaped as a passport-jwt extractor:
 *
 * ```ts
 * jwtFromRequest: ExtractJwt.fromExtractors([ExtractJwt.fromAuthHeaderAsBearerToken(), bearerTokenFromSubprotocol])
 * ```
 *
 * The client offers it next to the app's own subprotocol (`['chat', 'bearer.' + jwt]`): the
 * 101 selects `chat`, so the token is never echoed. JWTs (base64url and dots) are valid
 * subprotocol tokens.
 * @publicApi
 */
export function bearerTokenFromSubprotocol(request: IncomingMessage): string | null {
  const header = request.headers['sec-websocket-protocol'];
  if (typeof header !== 'string') return null;
  for (const offered of header.split(',')) {
    const protocol = offered.trim();
    if (protocol.length > PREFIX.length && protocol.slice(0, PREFIX.length).toLowerCase() === PREFIX) {
      return protocol.slice(PREFIX.length);
    }
  }
  return null;
}
