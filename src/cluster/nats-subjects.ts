import { sessionTopic, unescapeUserId } from './topics.js';

/**
 * How `NatsTransport` turns a Riverside topic (built in `topics.ts`) into a NATS subject.
 *
 * NATS splits subjects into tokens on `.`, gives `*` and `>` a wildcard meaning and forbids
 * whitespace, so an id cannot be put in a subject as it is. The mapping, which is also the
 * contract for external publishers (SPEC 9.4):
 *
 * | topic                     | subject                                  |
 * |---------------------------|------------------------------------------|
 * | `user:<id>`               | `<prefix>.user.<escaped id>`             |
 * | `channel:<id>`            | `<prefix>.channel.<escaped id>`          |
 * | `session:<userId>/<sid>`  | `<prefix>.session.<escaped userId>.<escaped sid>` |
 * | `ext:<any of the above>`  | `<prefix>.ext.` + the subject of that topic without the prefix |
 * | `bridge`                  | `<prefix>.bridge`                        |
 *
 * Escaping is percent-encoding of the UTF-8 bytes of `%` (the escape character itself), `.`,
 * `*`, `>`, whitespace and control characters, with upper-case hex: user `ann.b` is
 * `riverside.user.ann%2Eb`, channel `a b` is `riverside.channel.a%20b`. Every other character,
 * including non-ASCII ones, stays as it is, so `riverside.user.42` reaches user 42. Ids that are
 * empty (Riverside never creates them) become the token `%`, which no escaped id can be.
 * Each id is exactly one token, so the mapping is one-to-one and never produces a wildcard.
 * @publicApi
 */
export function natsSubject(prefix: string, topic: string): string {
  if (topic === 'bridge') return `${prefix}.bridge`;
  if (topic.startsWith('ext:')) return natsSubject(`${prefix}.ext`, topic.slice(4));
  const colon = topic.indexOf(':');
  if (colon <= 0) throw new Error(`NatsTransport: "${topic}" is not a Riverside topic (kind:name)`);
  const kind = topic.slice(0, colon);
  const name = topic.slice(colon + 1);
  if (kind !== 'session') return `${prefix}.${escapeNatsToken(kind)}.${escapeNatsToken(name)}`;
  // sessionTopic() escapes '%' and '/' in the user id, so the first '/' ends the user id;
  // the subject carries the plain ids as two tokens instead.
  const slash = name.indexOf('/');
  if (slash < 0) throw new Error(`NatsTransport: "${topic}" is not a Riverside session topic (session:userId/sessionId)`);
  const userId = unescapeUserId(name.slice(0, slash));
  return `${prefix}.session.${escapeNatsToken(userId)}.${escapeNatsToken(name.slice(slash + 1))}`;
}

const SPECIAL = /[%.*>\s\u0000-\u001f\u007f]/gu;

/** One id as one NATS subject token; see {@link natsSubject}. */
export function escapeNatsToken(id: string): string {
  if (id === '') return '%';
  return id.replace(SPECIAL, (char) => {
    let escaped = '';
    for (const byte of Buffer.from(char)) escaped += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    return escaped;
  });
}

/** A prefix is one or more tokens without wildcards or whitespace, e.g. `riverside` or `acme.rv`. */
export function isValidNatsPrefix(prefix: string): boolean {
  return /^[^.*>\s\u0000-\u001f\u007f]+(\.[^.*>\s\u0000-\u001f\u007f]+)*$/u.test(prefix);
}

/**
 * The Riverside topic of a subject under `prefix` (the reverse of {@link natsSubject} for
 * `kind:name` topics, session topics and `bridge`); null for any other subject.
 */
export function topicOfNatsSubject(prefix: string, subject: string): string | null {
  if (!subject.startsWith(`${prefix}.`)) return null;
  const tokens = subject.slice(prefix.length + 1).split('.');
  const [kind] = tokens;
  if (kind === 'bridge' && tokens.length === 1) return 'bridge';
  if (kind === 'session' && tokens.length === 3) return sessionTopic(unescapeNatsToken(tokens[1]), unescapeNatsToken(tokens[2]));
  // user:<id>, channel:<id>, presence:cluster...
  if (kind !== 'session' && tokens.length === 2) return `${unescapeNatsToken(kind)}:${unescapeNatsToken(tokens[1])}`;
  return null;
}

/** The id of a token made by {@link escapeNatsToken} (or typed by hand, unescaped). */
export function unescapeNatsToken(token: string): string {
  if (token === '%') return '';
  return token.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => Buffer.from(run.replace(/%/g, ''), 'hex').toString());
}
