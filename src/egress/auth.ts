/**
 * `egress.auth`: Basic proxy authentication (RFC 9110 11.7.1) for hosts where
 * other local users could reach the egress port. The header is consumed here
 * and never forwarded (headers.ts drops Proxy-Authorization as hop-by-hop);
 * the password is never logged or shown (log.ts and config/secrets.ts redact it).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** What a 407 carries so the client knows to send credentials. */
export const PROXY_AUTHENTICATE = { 'proxy-authenticate': 'Basic realm="sidecar"' } as const;

export interface ProxyCredentials {
  readonly user: string;
  readonly password: string;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * True when no credentials are configured, or the header carries the right
 * ones. Compared through fixed-length digests in constant time, so neither the
 * length nor the content of the secret leaks through timing.
 */
export function proxyAuthorized(header: string | string[] | undefined, auth: ProxyCredentials | undefined): boolean {
  if (!auth) return true;
  if (typeof header !== 'string') return false;
  const match = /^Basic[ \t]+([A-Za-z0-9+/=]+)[ \t]*$/i.exec(header);
  if (!match) return false;
  const given = Buffer.from(match[1], 'base64').toString('utf8');
  return timingSafeEqual(digest(given), digest(`${auth.user}:${auth.password}`));
}
