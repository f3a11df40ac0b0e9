/**
 * Who may use the admin port for what. The port is plain HTTP on loopback, so
 * the danger is a browser on the same host: a page that POSTs to it
 * (cross-site request forgery) or a name of the attacker's that resolves to
 * 127.0.0.1 (DNS rebinding). A write therefore must come from the admin's own
 * origin and name the admin's own address in `Host` (a rebound name is not
 * one); `admin.token` adds a bearer token for hosts where other local users
 * or other hosts can reach the port.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { parseListen } from '../config/units.ts';

/** Why a request is refused: the status (403, or 401 for the token), a code and a sentence for the JSON body. */
export interface Refusal {
  readonly status: 401 | 403;
  readonly error: 'forbidden' | 'unauthorized';
  readonly message: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Hosts that are never the admin's own address even when it is bound there: nobody connects to a wildcard. */
const WILDCARD = new Set(['0.0.0.0', '::', '']);

/** `Sec-Fetch-Site` values a write may carry: the admin's own page, or something the user typed. */
const OWN_SITE = new Set(['same-origin', 'none']);

/**
 * A write must name the admin's address in `Host` (the address it was reached
 * on, `localhost`, `127.0.0.1`, `[::1]` or the host of `admin.listen`, with the
 * admin's port) and, when a browser says where it comes from (`Origin`,
 * `Sec-Fetch-Site`), come from that same origin.
 */
export function writeRefusal(req: IncomingMessage, adminListen: string): Refusal | undefined {
  const port = req.socket.localPort;
  const own = new Set(['localhost', '127.0.0.1', '::1']);
  const listenHost = normalHost(parseListen(adminListen)?.host ?? '');
  if (!WILDCARD.has(listenHost)) own.add(listenHost);
  if (req.socket.localAddress) own.add(normalHost(req.socket.localAddress));
  const isOwn = (authority: { host: string; port: number } | undefined) => authority !== undefined && own.has(authority.host) && authority.port === port;

  const hostHeader = req.headers.host;
  const host = hostHeader === undefined ? undefined : parseAuthority(hostHeader);
  if (hostHeader !== undefined && !isOwn(host)) {
    return forbidden(`Host ${JSON.stringify(hostHeader)} is not this admin port's address (use 127.0.0.1:${port} or localhost:${port})`);
  }
  const origin = req.headers.origin;
  if (origin !== undefined) {
    const from = originAuthority(origin);
    const same = from !== undefined && (host === undefined ? isOwn(from) : from.host === host.host && from.port === host.port);
    if (!same) return forbidden(`a write from another origin (${JSON.stringify(origin)}) is refused`);
  }
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string' && !OWN_SITE.has(site.toLowerCase())) {
    return forbidden(`a write from another site (Sec-Fetch-Site: ${site}) is refused`);
  }
  return undefined;
}

/**
 * With `token` set, the request must carry `Authorization: Bearer <token>`;
 * compared in constant time. A path a browser opens (`browser`: the status
 * page) also takes HTTP Basic with the token as the password (any user name)
 * and challenges with Basic: a browser cannot send a bearer token when it
 * navigates, but it asks for a Basic password and then sends it with the
 * page's own requests.
 */
export function tokenRefusal(req: IncomingMessage, token: string | undefined, browser = false): Refusal | undefined {
  if (token === undefined) return undefined;
  const header = req.headers.authorization;
  const given = typeof header === 'string' ? (/^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)?.[1] ?? (browser ? basicPassword(header) : undefined)) : undefined;
  const scheme = browser ? 'Basic' : 'Bearer';
  if (given === undefined) {
    return unauthorized(browser ? 'this admin path needs admin.token (as the password, or as Authorization: Bearer <admin.token>)' : 'this admin path needs Authorization: Bearer <admin.token>', scheme);
  }
  // Fixed-length digests: neither the length nor the content of the token leaks through timing.
  if (!timingSafeEqual(digest(given), digest(token))) return unauthorized(browser ? 'the password is not admin.token' : 'the bearer token is not admin.token', scheme);
  return undefined;
}

/** The password of `Authorization: Basic base64(user:password)`; undefined for anything else. */
function basicPassword(header: string): string | undefined {
  const encoded = /^Basic[ \t]+([A-Za-z0-9+/=]+)[ \t]*$/i.exec(header)?.[1];
  if (encoded === undefined) return undefined;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? undefined : decoded.slice(colon + 1);
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

function forbidden(message: string): Refusal {
  return { status: 403, error: 'forbidden', message };
}

function unauthorized(message: string, scheme: 'Bearer' | 'Basic' = 'Bearer'): Refusal {
  const challenge = scheme === 'Basic' ? 'Basic realm="sidecar admin", charset="UTF-8"' : 'Bearer realm="sidecar admin"';
  return { status: 401, error: 'unauthorized', message, headers: { 'www-authenticate': challenge } };
}

/** Lower case, without brackets, a trailing dot or the IPv4-mapped prefix, so equal addresses compare equal. */
function normalHost(host: string): string {
  const bare = host.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
  return bare.startsWith('::ffff:') && bare.includes('.') ? bare.slice(7) : bare;
}

/** `host[:port]` or `[v6][:port]` (port 80 when absent, as in an http: URL); undefined when malformed. */
function parseAuthority(text: string): { host: string; port: number } | undefined {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[^:\[\]\s]+)(?::(\d{1,5}))?$/.exec(text.trim());
  if (!match) return undefined;
  return { host: normalHost(match[1]), port: match[2] === undefined ? 80 : Number(match[2]) };
}

/** The authority of an `Origin: http://host:port`; anything else (`null`, https:, a path) is no origin of ours. */
function originAuthority(origin: string): { host: string; port: number } | undefined {
  const match = /^http:\/\/([^/?#@]+)$/i.exec(origin.trim());
  return match ? parseAuthority(match[1]) : undefined;
}
