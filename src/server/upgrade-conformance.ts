import type { IncomingMessage } from 'node:http';
import * as ws from 'ws';

/**
 * The parts of `ws` that parse the handshake headers. They are exported by `ws` but not typed by
 * `@types/ws`; using them means Riverside refuses exactly what `ws` would, before any callback.
 */
interface WsHeaderParsers {
  extension: {
    parse(header: string): Record<string, Record<string, (string | true)[]>[]>;
    format(extensions: Record<string, Record<string, (string | true)[]>[]>): string;
  };
  subprotocol: { parse(header: string): Set<string> };
  PerMessageDeflate: new (options: Record<string, unknown>) => {
    accept(offers: Record<string, (string | true)[]>[]): unknown;
  };
}
const { extension, subprotocol, PerMessageDeflate } = ws as unknown as WsHeaderParsers;

const WEBSOCKET_KEY = /^[+/0-9A-Za-z]{22}==$/;
const PERMESSAGE_DEFLATE = 'permessage-deflate';
/** RFC 6455 4.4: the versions this server speaks, most preferred first (8 is hybi-10, as ws). */
export const SUPPORTED_VERSIONS = '13, 8';

/** A handshake refused with an HTTP status (and headers) before any callback ran. */
export class UpgradeRefusal {
  constructor(
    readonly status: number,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {}
}

/** The ws server options the checks depend on. */
export interface UpgradeServerOptions {
  readonly perMessageDeflate?: boolean | object;
  readonly maxPayload?: number;
}

/** What a conformant upgrade request carries, read once. */
export interface ConformantUpgrade {
  /** The subprotocols offered, in the client's order. */
  readonly subprotocols: string[];
}

/**
 * RFC 6455 4.2.1 / 4.2.2 (and what `ws.handleUpgrade` checks): an HTTP/1.1 GET with Host,
 * `Upgrade: websocket`, a 16-byte base64 key, version 13 (or 8), a well-formed subprotocol list
 * without repeats. Returns the refusal to answer, or what the request offers.
 *
 * With `ws.perMessageDeflate` on, offers `ws` would choke on are removed from the request (RFC 7692
 * 5: the server declines an offer it cannot accept and considers the next one), so that `ws` only
 * ever sees acceptable offers and negotiates the first of them.
 */
export function checkUpgrade(req: IncomingMessage, options: UpgradeServerOptions): UpgradeRefusal | ConformantUpgrade {
  const { headers } = req;
  if (req.httpVersionMajor < 1 || (req.httpVersionMajor === 1 && req.httpVersionMinor < 1)) return new UpgradeRefusal(400);
  if (headers.host === undefined || headers.host === '') return new UpgradeRefusal(400);
  if (req.method !== 'GET') return new UpgradeRefusal(405, { Allow: 'GET' });
  if ((headers.upgrade ?? '').toLowerCase() !== 'websocket') return new UpgradeRefusal(400);
  if (!WEBSOCKET_KEY.test(headers['sec-websocket-key'] ?? '')) return new UpgradeRefusal(400);
  const version = headers['sec-websocket-version'];
  if (version === undefined) return new UpgradeRefusal(400);
  if (version !== '13' && version !== '8') return new UpgradeRefusal(426, { 'Sec-WebSocket-Version': SUPPORTED_VERSIONS });
  const protocolHeader = headers['sec-websocket-protocol'];
  let subprotocols: string[] = [];
  if (protocolHeader !== undefined) {
    try {
      subprotocols = [...subprotocol.parse(protocolHeader)];
    } catch {
      return new UpgradeRefusal(400);
    }
  }
  if (options.perMessageDeflate && headers['sec-websocket-extensions'] !== undefined) {
    const acceptable = acceptableExtensions(headers['sec-websocket-extensions'], options);
    if (acceptable === null) return new UpgradeRefusal(400);
    if (acceptable === '') delete headers['sec-websocket-extensions'];
    else headers['sec-websocket-extensions'] = acceptable;
  }
  return { subprotocols };
}

/** The extension offers ws can accept, as a header value ('' for none); null when unparseable. */
function acceptableExtensions(header: string, options: UpgradeServerOptions): string | null {
  let offers: ReturnType<WsHeaderParsers['extension']['parse']>;
  try {
    offers = extension.parse(header);
  } catch {
    return null;
  }
  const deflateOffers = offers[PERMESSAGE_DEFLATE];
  if (deflateOffers === undefined) return '';
  const deflateOptions = options.perMessageDeflate === true ? {} : (options.perMessageDeflate as Record<string, unknown>);
  const accepted = deflateOffers.filter((offer) => {
    try {
      // accept() normalises in place: give it a copy, so the header keeps the client's words.
      const copy = Object.fromEntries(Object.entries(offer).map(([name, values]) => [name, [...values]]));
      new PerMessageDeflate({ ...deflateOptions, isServer: true, maxPayload: options.maxPayload ?? 0 }).accept([copy]);
      return true;
    } catch {
      return false;
    }
  });
  // Only permessage-deflate is negotiated by ws: other extensions are ignored, as ws does.
  return accepted.length === 0 ? '' : extension.format({ [PERMESSAGE_DEFLATE]: accepted });
}
