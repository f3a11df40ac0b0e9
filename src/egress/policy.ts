/**
 * Where egress may not go. Never back into this sidecar (a loop: its own
 * listeners, whatever the route). Never to a cloud metadata address unless the
 * route sets `allowPrivate`. And, Squid's `to_localhost`, a route that does not
 * name its host exactly (`*`, `*.suffix`, no host) reaches neither loopback nor
 * this host's own addresses without `allowLoopback`, nor link-local without
 * `allowPrivate`. RFC 1918 and ULA ranges stay reachable: Kubernetes services
 * live there. Addresses are compared in canonical form (net/address.ts).
 *
 * The check runs on resolved addresses, and the lookup that did the check is
 * the one the connection uses (`checkedLookup`), so a name that resolves
 * somewhere else a moment later (DNS rebinding) cannot slip through.
 */
import { lookup as dnsLookup, type LookupAllOptions, type LookupOneOptions } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { CompiledRoute, Reach } from '../config/compile.ts';
import { canonicalIp, embeddedIpv4 } from '../net/address.ts';
import { ProxyError } from '../core/errors.ts';

/** An address:port this process listens on (ingress, egress, admin). */
export interface OwnAddress {
  readonly address: string;
  readonly port: number;
}

/**
 * Cloud metadata and credential endpoints: AWS, GCP, Azure, OpenStack, Oracle,
 * DigitalOcean 169.254.169.254 (AWS IPv6 fd00:ec2::254, GCE IPv6 fd20:ce::254),
 * AWS ECS task credentials 169.254.170.2, EKS Pod Identity 169.254.170.23 /
 * fd00:ec2::23, Alibaba 100.100.100.200, Tencent 169.254.0.23, Azure WireServer
 * 168.63.129.16, Oracle's older 192.0.0.192.
 */
const METADATA = new BlockList();
for (const address of ['169.254.169.254', '169.254.170.2', '169.254.170.23', '169.254.0.23', '100.100.100.200', '168.63.129.16', '192.0.0.192']) {
  METADATA.addAddress(address, 'ipv4');
}
for (const address of ['fd00:ec2::254', 'fd00:ec2::23', 'fd20:ce::254']) METADATA.addAddress(address, 'ipv6');

const LINK_LOCAL = new BlockList();
LINK_LOCAL.addSubnet('169.254.0.0', 16, 'ipv4');
LINK_LOCAL.addSubnet('fe80::', 10, 'ipv6');

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** "This host" (RFC 1122 0/8, and ::): connecting there reaches a local listener. */
const UNSPECIFIED = new BlockList();
UNSPECIFIED.addSubnet('0.0.0.0', 8, 'ipv4');
UNSPECIFIED.addAddress('::', 'ipv6');

function family(address: string): 'ipv4' | 'ipv6' {
  return isIP(address) === 6 ? 'ipv6' : 'ipv4';
}

/** Interfaces change rarely; reading them once a second spares a getifaddrs() per new connection. */
const INTERFACES_TTL_MS = 1_000;
let interfaces: { readonly at: number; readonly addresses: ReadonlySet<string> } | undefined;

/** True for an address of one of this machine's interfaces (canonical form). */
function isInterfaceAddress(address: string): boolean {
  const now = performance.now();
  if (!interfaces || now - interfaces.at > INTERFACES_TTL_MS) {
    const addresses = new Set<string>();
    for (const entries of Object.values(networkInterfaces())) {
      for (const entry of entries ?? []) addresses.add(canonicalIp(entry.address) ?? entry.address);
    }
    interfaces = { at: now, addresses };
  }
  return interfaces.addresses.has(address);
}

/** True when a connection to `address` (canonical) stays on this host. */
function reachesThisHost(address: string): boolean {
  const kind = family(address);
  return LOOPBACK.check(address, kind) || UNSPECIFIED.check(address, kind) || isInterfaceAddress(address);
}

/** What a destination check needs besides the address: the route's reach, and the sidecar's listeners. */
export interface DestinationRules extends Reach {
  /** The sidecar's bound listeners, read at check time (a reload may rebind them). */
  readonly own: () => readonly OwnAddress[];
}

/**
 * Why `address:port` is refused, or undefined when it is allowed (or not an
 * IP literal). Both sides are compared in canonical form (net/address.ts):
 * `[::ffff:7f00:1]` or `127.1` is the listener on 127.0.0.1 as much as
 * `127.0.0.1` is.
 */
export function addressProblem(rawAddress: string, port: number, rules: DestinationRules): string | undefined {
  const address = canonicalIp(rawAddress);
  if (address === undefined) return undefined;
  for (const own of rules.own()) {
    if (own.port !== port) continue;
    const bound = canonicalIp(own.address) ?? own.address;
    // `::` is dual-stack on Linux; `0.0.0.0` takes IPv4 only. Connecting to 0.0.0.0 or :: reaches this host.
    const wildcard = bound === '::' || (bound === '0.0.0.0' && family(address) === 'ipv4');
    const anyLocal = address === '0.0.0.0' || address === '::';
    if (address === bound || anyLocal || (wildcard && reachesThisHost(address))) {
      return `request loop: ${rawAddress}:${port} is this sidecar's own listener`;
    }
  }
  return classProblem(rawAddress, address, rules) ?? classProblem(rawAddress, embeddedIpv4(address), rules);
}

/**
 * Why the class of `address` (loopback, link-local, metadata, ...) is refused
 * by the route's reach. A NAT64 or IPv4-compatible IPv6 address is judged by
 * the IPv4 address it carries too.
 */
function classProblem(rawAddress: string, address: string | undefined, rules: DestinationRules): string | undefined {
  if (address === undefined) return undefined;
  const kind = family(address);
  if (!rules.private && METADATA.check(address, kind)) {
    return `${rawAddress} is a cloud metadata address (reachable only through a route with allowPrivate: true)`;
  }
  if (!rules.private && !rules.exactHost && LINK_LOCAL.check(address, kind)) {
    return `${rawAddress} is a link-local address (reachable only through a route that names the host exactly, or with allowPrivate: true)`;
  }
  if (rules.loopback) return undefined;
  if (UNSPECIFIED.check(address, kind)) {
    // Not even for a route that names its host: a DNS sinkhole answers 0.0.0.0 for a name it blocks.
    return `${rawAddress} is the unspecified address, which reaches this host's loopback (reachable only through a route with allowLoopback: true)`;
  }
  if (rules.exactHost) return undefined;
  if (LOOPBACK.check(address, kind)) {
    return `${rawAddress} is a loopback address (reachable only through a route that names the host exactly, or with allowLoopback: true)`;
  }
  if (isInterfaceAddress(address)) {
    return `${rawAddress} is one of this host's own addresses, as good as loopback (reachable only through a route that names the host exactly, or with allowLoopback: true)`;
  }
  return undefined;
}

/** A resolved, checked address. */
export interface CheckedAddress {
  readonly address: string;
  readonly family: number;
}

/**
 * Resolves `host` (every address) and refuses the whole destination when any
 * address is not allowed: a name with one good and one bad address must not
 * be usable to reach the bad one.
 */
export function resolveChecked(host: string, port: number, rules: DestinationRules): Promise<CheckedAddress[]> {
  return new Promise((resolve, reject) => {
    const literal = canonicalIp(host);
    if (literal !== undefined) {
      const problem = addressProblem(literal, port, rules);
      if (problem) reject(new ProxyError('destination_denied', problem));
      else resolve([{ address: literal, family: isIP(literal) }]);
      return;
    }
    dnsLookup(host, { all: true, verbatim: true }, (err, addresses) => {
      if (err) {
        reject(err);
        return;
      }
      for (const entry of addresses) {
        const problem = addressProblem(entry.address, port, rules);
        if (problem) {
          reject(new ProxyError('destination_denied', `${host} resolves to ${entry.address}: ${problem}`));
          return;
        }
      }
      resolve(addresses);
    });
  });
}

/**
 * A `lookup` for net.connect / tls.connect (and undici's connector, which
 * passes it through) that resolves, checks, and hands net only the addresses
 * it checked. The hostname stays what the client asked for (SNI, Host).
 */
export function checkedLookup(port: number, rules: DestinationRules): LookupFunction {
  return (hostname, options, callback) => {
    resolveChecked(hostname, port, rules).then(
      (addresses) => answerLookup(hostname, addresses, options, callback),
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    );
  };
}

/** A `lookup` that answers with addresses checked beforehand: the connection goes where the check looked. */
export function pinnedLookup(addresses: readonly CheckedAddress[]): LookupFunction {
  return (hostname, options, callback) => answerLookup(hostname, addresses, options, callback);
}

function answerLookup(
  hostname: string,
  addresses: readonly CheckedAddress[],
  options: LookupOneOptions | LookupAllOptions,
  callback: Parameters<LookupFunction>[2],
): void {
  if (options.all) {
    callback(null, addresses.map((entry) => ({ address: entry.address, family: entry.family })));
    return;
  }
  const wanted = options.family === 4 || options.family === 6 ? addresses.find((entry) => entry.family === options.family) : addresses[0];
  if (!wanted) {
    callback(Object.assign(new Error(`no IPv${options.family} address for ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
    return;
  }
  callback(null, wanted.address, wanted.family);
}

/** A route without a reach (never so on egress) reaches no special address. */
const NO_REACH: Reach = Object.freeze({ exactHost: false, loopback: false, private: false });

/** Which special addresses a pass-through destination reached through `route` may be. */
export function reachOf(route: CompiledRoute): Reach {
  return route.reach ?? NO_REACH;
}

/** The rules of a pass-through destination reached through `route`. */
export function rulesFor(route: CompiledRoute, own: () => readonly OwnAddress[]): DestinationRules {
  return { ...reachOf(route), own };
}

/**
 * Index of the first route at or after `from` whose host and ports allow
 * `host:port`: CONNECT's allow-list, before any request is seen. With
 * `blind`, only a route that can be judged without seeing a request counts:
 * one that sets none of `path`,
 * `pathRegex`, `methods` and `headers`. A blind tunnel shows none of them, so
 * such a route must never open one (its headers would be the CONNECT's, which
 * the client chooses; its path and method would be made up).
 */
export function firstAllowing(routes: readonly CompiledRoute[], host: string, port: number, blind = false, from = 0): number {
  for (let i = from; i < routes.length; i++) {
    const match = routes[i].match;
    if (match.host !== undefined && !match.host(host)) continue;
    if (match.ports !== undefined && !match.ports.has(port)) continue;
    if (blind && (match.path !== undefined || match.pathRegex !== undefined || match.methods !== undefined || match.headers !== undefined)) continue;
    return i;
  }
  return -1;
}

/** CONNECT's answer before `200`: the route that admits the tunnel, or why none does. */
export type Admission = { readonly index: number; readonly error?: undefined } | { readonly index: number; readonly error: ProxyError };

/**
 * The first route that allows `host:port` and, for a pass-through, whose
 * rules accept every address of the host. A later route may accept what an
 * earlier one refuses (a `*` route before one that names the host), so each
 * is tried in turn; the refusal given is the first route's. A name that does
 * not resolve is refused at once (502).
 */
export async function admitConnect(routes: readonly CompiledRoute[], host: string, port: number, own: () => readonly OwnAddress[]): Promise<Admission> {
  let refusal: Admission | undefined;
  for (let i = firstAllowing(routes, host, port); i !== -1; i = firstAllowing(routes, host, port, false, i + 1)) {
    const route = routes[i];
    if (route.upstream !== undefined) return { index: i };
    try {
      await resolveChecked(host, port, rulesFor(route, own));
      return { index: i };
    } catch (err) {
      if (!(err instanceof ProxyError)) return { index: i, error: new ProxyError('upstream_connect_failed', `cannot resolve ${host}`, { cause: err }) };
      refusal ??= { index: i, error: err };
    }
  }
  return refusal ?? { index: -1, error: new ProxyError('destination_denied') };
}
