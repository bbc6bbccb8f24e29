import { BlockList, isIP } from 'node:net';

/** Reads `PeerAddress.forwardedFor` from the socket address and the `X-Forwarded-For` header. */
export type ForwardedForReader = (socketAddress: string, header: string | undefined) => string;

/** Is the `hop`-th address from the socket (0 = the socket's peer) a proxy we trust? */
export type ProxyTrust = (address: string, hop: number) => boolean;

/** Express's (proxy-addr's) named ranges. */
const NAMED_RANGES: Readonly<Record<string, readonly string[]>> = {
  loopback: ['127.0.0.1/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

const LEGACY_FORWARDED_FOR = /^[A-Za-z0-9:._\-[\]]+$/;

/** `::ffff:10.0.0.1` is the IPv4 address 10.0.0.1 as a dual-stack socket reports it. */
export function unmapIPv4(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/**
 * Without `trustProxy`: the left-most `X-Forwarded-For` entry, whatever sent it. The client
 * controls this value unless a proxy in front overwrites the header.
 */
export const leftMostForwardedFor: ForwardedForReader = (_socketAddress, header) => {
  if (header === undefined) return '';
  const first = header.split(',')[0].trim();
  return LEGACY_FORWARDED_FOR.test(first) ? first : '';
};

/**
 * Express's semantics (proxy-addr): walk from the socket's peer towards the client through the
 * `X-Forwarded-For` entries, right to left, and stop at the first address that is not a trusted
 * proxy; that address is the client's. An entry that is not an IP address ends the walk as
 * untrusted, and then the client is unknown ('').
 */
export function trustedForwardedFor(trust: ProxyTrust): ForwardedForReader {
  return (socketAddress, header) => {
    const hops = header === undefined || header.trim() === '' ? [] : header.split(',');
    let address = socketAddress;
    for (let hop = 0; hop < hops.length; hop++) {
      if (!trust(address, hop)) return address;
      address = unmapIPv4(hops[hops.length - 1 - hop].trim());
      if (isIP(address) === 0) return '';
    }
    return address;
  };
}

/** A trust predicate for a list of addresses, CIDR ranges and Express's range names; null if one is invalid. */
export function compileTrustList(entries: readonly string[]): { trust: ProxyTrust } | { invalid: string } {
  const list = new BlockList();
  for (const entry of entries) {
    for (const range of NAMED_RANGES[entry] ?? [entry]) {
      const [address, prefix, extra] = range.split('/');
      const family = isIP(address);
      const bits = prefix === undefined ? (family === 6 ? 128 : 32) : Number(prefix);
      if (family === 0 || extra !== undefined || !/^\d+$/.test(String(bits)) || bits > (family === 6 ? 128 : 32)) {
        return { invalid: entry };
      }
      list.addSubnet(address, bits, family === 6 ? 'ipv6' : 'ipv4');
    }
  }
  return {
    trust: (address) => {
      const family = isIP(address);
      return family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
    },
  };
}
