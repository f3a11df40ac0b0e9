/**
 * `trustedProxies`: the peers whose X-Forwarded-For/-Proto/-Host are believed
 * (Caddy's `trusted_proxies`, Envoy's `xff_num_trusted_hops`). Anybody else
 * could claim `https` or any client address, so for them the sidecar writes
 * those headers itself. Addresses are compared in canonical form by
 * node:net's BlockList, built once per config (an IPv4-mapped IPv6 peer,
 * `::ffff:10.1.2.3`, matches an IPv4 entry such as `10.0.0.0/8`).
 */
import { BlockList, isIP } from 'node:net';
import { canonicalIp } from './address.ts';

/** One entry of the list: an address or a CIDR block. */
export interface ProxyEntry {
  readonly address: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

/** `::ffff:1.2.3.4` (any spelling BlockList accepts) as the IPv4 address it carries. */
const MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/**
 * Parses `10.0.0.0/8`, `10.1.2.3`, `fd00::/8`, `::1` or `[::1]`; undefined for
 * anything else. An IPv4-mapped IPv6 entry becomes the IPv4 entry it means.
 */
export function parseProxyEntry(text: string): ProxyEntry | undefined {
  const match = /^\[?([0-9a-fA-F:.]+)\]?(?:\/(\d{1,3}))?$/.exec(text.trim());
  if (!match) return undefined;
  const version = isIP(match[1]);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  const prefix = match[2] === undefined ? max : Number(match[2]);
  if (prefix > max) return undefined;
  const mapped = version === 6 ? MAPPED.exec(match[1]) : null;
  if (mapped && prefix >= 96) return { address: mapped[1], prefix: prefix - 96, family: 'ipv4' };
  return { address: match[1], prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** The list as a BlockList, or undefined when it is empty (nobody is trusted: the default). */
export function compileTrustedProxies(entries: readonly string[]): BlockList | undefined {
  if (entries.length === 0) return undefined;
  const list = new BlockList();
  for (const text of entries) {
    const entry = parseProxyEntry(text);
    if (!entry) throw new Error(`not an address or CIDR block: ${text}`); // the schema already refused it
    list.addSubnet(entry.address, entry.prefix, entry.family);
  }
  return list;
}

/** Whether the peer `address` (a socket's remoteAddress) is one of the trusted proxies. */
export function isTrustedPeer(list: BlockList | undefined, address: string | undefined): boolean {
  if (list === undefined || address === undefined) return false;
  const zone = address.indexOf('%'); // fe80::1%eth0: the zone names an interface, not an address
  const bare = zone === -1 ? address : address.slice(0, zone);
  return list.check(bare, bare.includes(':') ? 'ipv6' : 'ipv4');
}

/** `::ffff:10.1.2.3`, as a dual-stack socket reports an IPv4 peer. */
const MAPPED_PEER = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/**
 * The client's address as a rate limit or a log should take it: the peer
 * itself, unless the peer is a trusted proxy; then X-Forwarded-For is read
 * from the right (the hop nearest to us) leftwards, past every trusted proxy,
 * and the first address that is not one is the client (NGINX's
 * `real_ip_recursive on`, Caddy's `trusted_proxies_strict`, Envoy's
 * `xff_num_trusted_hops`). Only the part of the header that trusted proxies
 * wrote is believed: whatever the client put at the left is never reached
 * while an untrusted hop stands between. When every hop is trusted, the
 * left-most is the client. An entry that is no address stops the walk at the
 * last hop known. Addresses come back in canonical form (an IPv4-mapped
 * peer as its IPv4 address), so one client is one key however it connects.
 */
export function clientAddress(list: BlockList | undefined, peer: string | undefined, forwardedFor: string | string[] | undefined): string {
  const mapped = peer === undefined ? null : MAPPED_PEER.exec(peer);
  const address = mapped ? mapped[1] : (peer ?? '');
  if (forwardedFor === undefined || !isTrustedPeer(list, address)) return address;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',');
  let client = address;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = canonicalIp(hopAddress(hops[i].trim()));
    if (hop === undefined) return client;
    client = hop;
    if (!isTrustedPeer(list, hop)) return hop;
  }
  return client;
}

/** An X-Forwarded-For entry without the port some proxies add (`1.2.3.4:5678`, `[::1]:80`). */
function hopAddress(entry: string): string {
  if (entry.startsWith('[')) {
    const end = entry.indexOf(']');
    return end === -1 ? entry : entry.slice(1, end);
  }
  const colon = entry.indexOf(':');
  return colon !== -1 && colon === entry.lastIndexOf(':') ? entry.slice(0, colon) : entry;
}
