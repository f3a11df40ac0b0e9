/**
 * The TLS side of an `https://` endpoint, from its upstream's `tls` config
 * (and `discovery`) and what the files of `tls` hold (read, checked and
 * watched by src/tls/upstream-certs.ts, so a rotated file is used by the next
 * pool). One function for every connection the sidecar makes to an upstream:
 * the undici pools (registry.ts), their health-check pools, and the
 * endpoint's node:http Agent for WebSocket upgrades (agent.ts). Two copies
 * drifted before: the upgrades ignored `ca`, `serverName` and
 * `insecureSkipVerify`.
 */
import { isIP } from 'node:net';
import type { SecureVersion } from 'node:tls';
import type { UpstreamConfig } from '../config/schema.ts';
import type { UpstreamTlsMaterial } from '../tls/upstream-certs.ts';

/** What tls.connect (and undici's connector, which passes them on) takes from the config. */
export interface UpstreamTlsOptions {
  /**
   * SNI and the name the certificate is checked against: `tls.serverName`,
   * else the DNS name of `discovery`, else the endpoint's host, never the
   * client's Host (SPEC "TLS"). Absent for an IP endpoint without either
   * (SNI cannot carry an IP; the certificate is then checked against the IP).
   */
  readonly servername?: string;
  /** The CAs to trust instead of the system's (`tls.ca`). */
  readonly ca?: Buffer;
  /** The client certificate and key presented to the endpoint (`tls.cert`, `tls.key`: mTLS). */
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly minVersion?: SecureVersion;
  /** `insecureSkipVerify: true` turns verification off. */
  readonly rejectUnauthorized?: false;
}

/**
 * TLS options for the endpoint `url` of an upstream with `config` (its `tls`
 * and `discovery`; none for an egress pass-through destination); undefined
 * for an `http://` endpoint. `material` is what the files of `tls` hold now
 * (absent: the upstream names no files).
 */
export function upstreamTlsOptions(
  config: Pick<UpstreamConfig, 'tls' | 'discovery'> | undefined,
  url: string,
  material?: UpstreamTlsMaterial,
): UpstreamTlsOptions | undefined {
  const parsed = new URL(url);
  if (parsed.protocol !== 'https:') return undefined;
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  const tls = config?.tls;
  // A discovered endpoint is an address: its certificate names the DNS name it was found under.
  const servername = tls?.serverName ?? config?.discovery?.dns.name.replace(/\.$/, '') ?? (isIP(host) === 0 ? host : undefined);
  return {
    ...(servername ? { servername } : {}),
    ...(material?.ca ? { ca: material.ca } : {}),
    ...(material?.cert && material.key ? { cert: material.cert, key: material.key } : {}),
    ...(tls?.minVersion ? { minVersion: tls.minVersion } : {}),
    ...(tls?.insecureSkipVerify ? { rejectUnauthorized: false as const } : {}),
  };
}
