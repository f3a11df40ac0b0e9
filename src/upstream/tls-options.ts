/**
 * The TLS side of an `https://` endpoint, from its upstream's `tls` config
 * and the files it names (read and watched by src/tls/upstream-certs.ts).
 * One function for every connection the sidecar makes to an upstream: the
 * undici pools (registry.ts) and their health-check pools.
 */
import { isIP } from 'node:net';
import type { SecureVersion } from 'node:tls';
import type { UpstreamConfig } from '../config/schema.ts';
import type { UpstreamTlsMaterial } from '../tls/upstream-certs.ts';

/** What tls.connect (and undici's connector, which passes them on) takes from the config. */
export interface UpstreamTlsOptions {
  /**
   * SNI and the name the certificate is checked against: `tls.serverName`,
   * else the endpoint's host, never the client's Host (SPEC "TLS"). Absent
   * for an IP endpoint without `serverName` (SNI cannot carry an IP; the
   * certificate is then checked against the IP).
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
 * TLS options for the endpoint `url`; undefined for an `http://` endpoint.
 * `material` is what the files of `tls` hold now (absent: the upstream names
 * no files).
 */
export function upstreamTlsOptions(tls: UpstreamConfig['tls'], url: string, material?: UpstreamTlsMaterial): UpstreamTlsOptions | undefined {
  const parsed = new URL(url);
  if (parsed.protocol !== 'https:') return undefined;
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  const servername = tls?.serverName ?? (isIP(host) === 0 ? host : undefined);
  return {
    ...(servername ? { servername } : {}),
    ...(material?.ca ? { ca: material.ca } : {}),
    ...(material?.cert && material.key ? { cert: material.cert, key: material.key } : {}),
    ...(tls?.minVersion ? { minVersion: tls.minVersion } : {}),
    ...(tls?.insecureSkipVerify ? { rejectUnauthorized: false as const } : {}),
  };
}
