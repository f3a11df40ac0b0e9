/**
 * Request targets of a forward proxy (RFC 9112 3.2): absolute-form
 * (`GET http://host:port/path`), authority-form (`CONNECT host:port`) and, for
 * requests inside a CONNECT tunnel or from an app that calls the sidecar
 * directly, origin-form with the destination given elsewhere.
 */
import { isIP } from 'node:net';
import { canonicalIp } from '../net/address.ts';

/**
 * Where a request goes: scheme, lower-case host, port, and path with query.
 * An IP literal host is in canonical form (net/address.ts: `127.1` and
 * `[::ffff:7f00:1]` are `127.0.0.1`, IPv6 without brackets), so routes and
 * the loop guard see one spelling of each address.
 */
export interface Destination {
  readonly scheme: 'http' | 'https';
  readonly host: string;
  readonly port: number;
  /** Origin-form path and query sent upstream. */
  readonly path: string;
}

const DEFAULT_PORT = { http: 80, https: 443 } as const;

/** `host` or `host:port` for a Host header: brackets around IPv6, no default port. */
export function authorityOf(scheme: 'http' | 'https', host: string, port: number): string {
  const name = isIP(host) === 6 ? `[${host}]` : host;
  return port === DEFAULT_PORT[scheme] ? name : `${name}:${port}`;
}

/** `host:port` always with the port (logs, pool keys). */
export function hostPort(host: string, port: number): string {
  return `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

/** A DNS name or IP literal: letters, digits, `-`, `_`, `.`; at most 253 characters (a trailing dot aside). */
const HOSTNAME = /^[a-z0-9_]([a-z0-9_.-]{0,251}[a-z0-9_])?$/;

/** A fully qualified name's trailing dot (`example.com.`) is allowed: route matching ignores it. */
function validHost(host: string): boolean {
  return HOSTNAME.test(host.endsWith('.') ? host.slice(0, -1) : host) || isIP(host) !== 0;
}

/** Parses an absolute-form target; undefined for anything that is not http(s)://host[:port]/... */
export function parseAbsolute(url: string): Destination | undefined {
  // A non-empty authority right after `//`, without userinfo (RFC 9110 4.2.4: treat userinfo as an error).
  const authority = /^https?:\/\/([^/?#]*)/i.exec(url)?.[1];
  if (!authority || authority.includes('@')) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const scheme = parsed.protocol === 'https:' ? 'https' : 'http';
  const named = parsed.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (!named || !validHost(named)) return undefined;
  const host = canonicalIp(named) ?? named;
  const port = parsed.port === '' ? DEFAULT_PORT[scheme] : Number(parsed.port);
  if (port < 1) return undefined;
  return { scheme, host, port, path: absolutePath(url) };
}

/**
 * The path and query of an absolute-form target, as the client wrote them
 * (`http://host/a/../b?q` -> `/a/../b?q`). Not the WHATWG URL's pathname:
 * that resolves dot segments its own way (`//..` climbs differently,
 * a path above the root is clamped), and the path every request form is
 * matched on must come out of one normalisation (net/normalize-path.ts).
 */
export function absolutePath(url: string): string {
  const rest = /^https?:\/\/[^/?#]*([^#]*)/i.exec(url)?.[1] ?? '';
  return rest.startsWith('/') ? rest : `/${rest}`;
}

/**
 * Parses `host:port` (CONNECT's authority-form, or a Host header when
 * `defaultPort` is given). The port is required unless a default is given.
 */
export function parseAuthority(value: string | undefined, defaultPort?: number): { host: string; port: number } | undefined {
  if (!value) return undefined;
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s/@?#\[\]]+))(?::(\d{1,5}))?$/.exec(value);
  if (!match) return undefined;
  const host = (match[1] ?? match[2]).toLowerCase();
  if (match[1] !== undefined && isIP(host) !== 6) return undefined;
  if (!validHost(host)) return undefined;
  if (match[3] === undefined && defaultPort === undefined) return undefined;
  const port = match[3] === undefined ? defaultPort! : Number(match[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: canonicalIp(host) ?? host, port };
}
