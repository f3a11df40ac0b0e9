/**
 * The TLS side of an `https://` endpoint, from its upstream's `tls` config
 * (and `discovery`).
 * One function for every connection the sidecar makes to an upstream: the
 * undici pools (registry.ts), their health-check pools, and the endpoint's
 * node:http Agent for WebSocket upgrades (agent.ts). Two copies drifted
 * before: the upgrades ignored `ca`, `serverName` and `insecureSkipVerify`.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { UpstreamConfig } from '../config/schema.ts';

/** What tls.connect (and undici's connector, which passes them on) takes from the config. */
export interface UpstreamTlsOptions {
  /**
   * SNI and the name the certificate is checked against: `tls.serverName`,
   * else the DNS name of `discovery`, else the endpoint's host, never the
   * client's Host (SPEC "TLS"). Absent for an IP endpoint without either
   * (SNI cannot carry an IP; the certificate is then checked against the IP).
   */
  readonly servername?: string;
  /** The CAs to trust instead of the system's, read from `tls.ca` (made absolute by config/semantic.ts). */
  readonly ca?: Buffer;
  /** `insecureSkipVerify: true` turns verification off. */
  readonly rejectUnauthorized?: false;
}

/**
 * TLS options for the endpoint `url` of an upstream with `config` (its `tls`
 * and `discovery`; none for an egress pass-through destination); undefined
 * for an `http://` endpoint. Reads the CA file: throws when it cannot be read
 * (reconcile reports that before anything changed).
 */
export function upstreamTlsOptions(config: Pick<UpstreamConfig, 'tls' | 'discovery'> | undefined, url: string): UpstreamTlsOptions | undefined {
  const parsed = new URL(url);
  if (parsed.protocol !== 'https:') return undefined;
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  const tls = config?.tls;
  // A discovered endpoint is an address: its certificate names the DNS name it was found under.
  const servername = tls?.serverName ?? config?.discovery?.dns.name.replace(/\.$/, '') ?? (isIP(host) === 0 ? host : undefined);
  return {
    ...(servername ? { servername } : {}),
    ...(tls?.ca ? { ca: readFileSync(tls.ca) } : {}),
    ...(tls?.insecureSkipVerify ? { rejectUnauthorized: false as const } : {}),
  };
}
