/**
 * Where egress may not go, whatever the routes say: back into this sidecar (a
 * loop), and to link-local / cloud metadata addresses unless a route names the
 * host exactly. The check runs on resolved addresses, and the lookup that did
 * the check is the one the connection uses (`checkedLookup`), so a name that
 * resolves somewhere else a moment later (DNS rebinding) cannot slip through.
 */
import { lookup as dnsLookup, type LookupAllOptions, type LookupOneOptions } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { CompiledRoute } from '../config/compile.ts';
import { canonicalIp } from '../net/address.ts';
import { ProxyError } from '../proxy/errors.ts';

/** An address:port this process listens on (ingress, egress, admin). */
export interface OwnAddress {
  readonly address: string;
  readonly port: number;
}

/** Link-local and metadata ranges (AWS/GCP/Azure 169.254.169.254, AWS IPv6 fd00:ec2::254). */
const METADATA = new BlockList();
METADATA.addSubnet('169.254.0.0', 16, 'ipv4');
METADATA.addSubnet('fe80::', 10, 'ipv6');
METADATA.addAddress('fd00:ec2::254', 'ipv6');

/** Addresses that reach this host whatever interface a listener is bound to. */
const LOCAL = new BlockList();
LOCAL.addSubnet('127.0.0.0', 8, 'ipv4');
LOCAL.addAddress('0.0.0.0', 'ipv4');
LOCAL.addAddress('::1', 'ipv6');
LOCAL.addAddress('::', 'ipv6');

function family(address: string): 'ipv4' | 'ipv6' {
  return isIP(address) === 6 ? 'ipv6' : 'ipv4';
}

/** Addresses of this machine's interfaces, read once per check (cheap, and interfaces can change). */
function isLocalAddress(address: string): boolean {
  if (LOCAL.check(address, family(address))) return true;
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) {
      if (canonicalIp(entry.address) === address) return true;
    }
  }
  return false;
}

/** What a destination check needs besides the address. */
export interface DestinationRules {
  /** The route names this host exactly (no `*`): metadata / link-local addresses are then allowed. */
  readonly explicit: boolean;
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
    if (address === bound || anyLocal || (wildcard && isLocalAddress(address))) {
      return `request loop: ${rawAddress}:${port} is this sidecar's own listener`;
    }
  }
  if (!rules.explicit && METADATA.check(address, family(address))) {
    return `${rawAddress} is a link-local / metadata address (allowed only when a route names this host exactly)`;
  }
  return undefined;
}

/** True when the route's host pattern names `host` exactly (not `*` or `*.suffix`). */
export function namesHostExactly(pattern: string | undefined): boolean {
  return pattern !== undefined && !pattern.includes('*');
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

/** Rules for a route: metadata addresses only when the route names the host exactly. */
export function rulesFor(pattern: string | undefined, own: () => readonly OwnAddress[]): DestinationRules {
  return { explicit: namesHostExactly(pattern), own };
}

/**
 * Index of the first route whose host and ports allow `host:port`: CONNECT's
 * allow-list, before any request is seen. With `blind`, only a route that can
 * be judged without seeing a request counts: one that sets none of `path`,
 * `pathRegex`, `methods` and `headers`. A blind tunnel shows none of them, so
 * such a route must never open one (its headers would be the CONNECT's, which
 * the client chooses; its path and method would be made up).
 */
export function firstAllowing(routes: readonly CompiledRoute[], host: string, port: number, blind = false): number {
  for (let i = 0; i < routes.length; i++) {
    const match = routes[i].match;
    if (match.host !== undefined && !match.host(host)) continue;
    if (match.ports !== undefined && !match.ports.has(port)) continue;
    if (blind && (match.path !== undefined || match.pathRegex !== undefined || match.methods !== undefined || match.headers !== undefined)) continue;
    return i;
  }
  return -1;
}
