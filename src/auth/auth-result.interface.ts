/**
 * What `@OnAuthenticate` returns (or resolves to) to accept a handshake.
 * @publicApi
 */
export interface AuthResult<S = unknown> {
  /** Who this connection belongs to. Compared as a string: 1 and '1' are the same user. */
  userId: string | number;
  /** This connection's session id; a random 40-hex id when absent. */
  sessionId?: string;
  /** Initial `session.state`. */
  state?: S;
  /** One of the subprotocols the client offered, echoed in the 101 response. */
  subprotocol?: string;
}
