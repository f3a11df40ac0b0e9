/**
 * Snapshot + request -> route. Routes are tried in order and the first whose
 * every match key holds wins (Envoy, NGINX `location` with prefixes, Caddy).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { CompiledMatch, CompiledRoute } from '../config/compile.ts';

/** What routing looks at; `host` is lower-case and without port, `path` without query. */
export interface RouteInput {
  readonly method: string;
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
}

/** Index of the first route at or after `from` that matches, or -1. */
export function findRoute(routes: readonly CompiledRoute[], input: RouteInput, from = 0): number {
  for (let i = from; i < routes.length; i++) {
    if (matches(routes[i].match, input)) return i;
  }
  return -1;
}

function matches(match: CompiledMatch, input: RouteInput): boolean {
  if (match.path !== undefined && !input.path.startsWith(match.path)) return false;
  if (match.methods !== undefined && !match.methods.has(input.method)) return false;
  if (match.host !== undefined && !match.host(input.host)) return false;
  if (match.ports !== undefined && !match.ports.has(input.port)) return false;
  if (match.pathRegex !== undefined && !match.pathRegex.test(input.path)) return false;
  if (match.headers !== undefined) {
    for (const [name, test] of match.headers) {
      const value = input.headers[name];
      if (value === undefined) return false;
      if (!test(Array.isArray(value) ? value.join(', ') : value)) return false;
    }
  }
  return true;
}

/** A Host header value split: lower-case host (IPv6 without brackets) and port. */
export interface HostAndPort {
  readonly host: string;
  readonly port: number;
}

/** The last value splitHost was given, and its answer: a sidecar mostly sees one Host. */
let last: { readonly value: string; readonly defaultPort: number; readonly split: HostAndPort | undefined } | undefined;

/**
 * Splits a Host header value into lower-case host and port. Returns undefined
 * for a value that is not a host (RFC 9112 3.2: a request with a bad Host is 400).
 */
export function splitHost(value: string | undefined, defaultPort: number): HostAndPort | undefined {
  if (!value) return undefined;
  const previous = last;
  if (previous && previous.value === value && previous.defaultPort === defaultPort) return previous.split;
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:\s/@\[\]]+)(?::(\d{1,5}))?$/.exec(value);
  let split: HostAndPort | undefined;
  if (match) {
    const port = match[2] === undefined ? defaultPort : Number(match[2]);
    const name = match[1].toLowerCase();
    if (port <= 65535) split = { host: name.startsWith('[') ? name.slice(1, -1) : name, port };
  }
  last = { value, defaultPort, split };
  return split;
}

/**
 * An absolute-form target (`http://host[:port]/path?query`) as origin-form,
 * when its authority names the same host and port as the Host header (case,
 * a trailing dot and a default port aside); undefined otherwise. RFC 9112
 * 3.2.2 makes the target win over Host, but the upstream gets the Host: a
 * request whose two names disagree is confused or smuggled, and refused.
 */
export function absoluteToOrigin(target: string, hostHeader: string): string | undefined {
  const match = /^(https?):\/\/([^/?#]+)([^#]*)$/i.exec(target);
  if (!match) return undefined;
  const defaultPort = match[1].length === 5 ? 443 : 80;
  const asked = splitHost(match[2], defaultPort);
  const host = splitHost(hostHeader, defaultPort);
  if (!asked || !host || asked.port !== host.port || withoutTrailingDot(asked.host) !== withoutTrailingDot(host.host)) return undefined;
  const rest = match[3];
  return rest.startsWith('/') ? rest : `/${rest}`;
}

/** `example.com.` -> `example.com`: a fully qualified name and its usual spelling are one host. */
export function withoutTrailingDot(host: string): string {
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

/** The path without its query string. */
export function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
