/**
 * Certificates as people and upstreams read them: the admin view (GET
 * /certs), the subject as RFC 4514 text, the SAN list, and the value of the
 * `forwardClientCert` header. Nothing here ever touches a key.
 */
import type { X509Certificate } from 'node:crypto';
import { daysLeft } from './pem.ts';

/** One loaded certificate in GET /certs (SPEC "TLS"). */
export interface CertificateView {
  readonly subject: string;
  readonly sans: readonly string[];
  readonly issuer: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly daysLeft: number;
  /** SHA-256 of the DER certificate, as `openssl x509 -fingerprint -sha256` prints it. */
  readonly sha256: string;
  readonly file: string;
}

/** What GET /certs shows of a certificate read from `file`. */
export function certificateView(certificate: X509Certificate, file: string, now: number = Date.now()): CertificateView {
  return {
    subject: distinguishedName(certificate.subject),
    sans: subjectAltNames(certificate),
    issuer: distinguishedName(certificate.issuer),
    notBefore: certificate.validFromDate.toISOString(),
    notAfter: certificate.validToDate.toISOString(),
    daysLeft: daysLeft(certificate, now),
    sha256: certificate.fingerprint256,
    file,
  };
}

/**
 * Node's multi-line name ("C=US\nO=Acme\nCN=alice", escaped as RFC 4514
 * asks) in the one-line form of RFC 4514, most specific part first:
 * "CN=alice,O=Acme,C=US" (what Envoy and NGINX's $ssl_client_s_dn give).
 */
export function distinguishedName(multiline: string): string {
  return multiline.split('\n').filter(Boolean).reverse().join(',');
}

/** `DNS:a.example` / `IP Address:10.0.0.1` / `URI:spiffe://...` / `email:...` entries, as "DNS:a.example", "IP:10.0.0.1", ... */
export function subjectAltNames(certificate: X509Certificate): string[] {
  const text = certificate.subjectAltName;
  if (!text) return [];
  const names: string[] = [];
  // Node quotes a value with a comma or a quote in it as a JSON string (since v17.3).
  for (const match of text.matchAll(/(DNS|IP Address|URI|email|[A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g)) {
    const kind = match[1] === 'IP Address' ? 'IP' : match[1];
    const value = match[2].startsWith('"') ? (JSON.parse(match[2]) as string) : match[2];
    names.push(`${kind}:${value}`);
  }
  return names;
}

/** SAN kinds that go upstream in the client certificate header, and their key there (Envoy's XFCC keys). */
const FORWARDED_SANS: Readonly<Record<string, string>> = { DNS: 'DNS', URI: 'URI', IP: 'IP', email: 'Email' };

/**
 * The `forwardClientCert` header value of a verified client certificate, in
 * Envoy's x-forwarded-client-cert element format:
 * `Hash=<sha256 hex>;Subject="CN=alice,O=Acme";DNS=alice.example;URI=spiffe://...`.
 * Only visible ASCII: anything else is percent-encoded (UTF-8).
 */
export function clientCertHeader(certificate: X509Certificate): string {
  const parts = [`Hash=${certificate.fingerprint256.replaceAll(':', '').toLowerCase()}`, `Subject=${quoted(distinguishedName(certificate.subject))}`];
  for (const name of subjectAltNames(certificate)) {
    const colon = name.indexOf(':');
    const key = FORWARDED_SANS[name.slice(0, colon)];
    if (key) parts.push(`${key}=${plain(name.slice(colon + 1))}`);
  }
  return parts.join(';');
}

/** A value between double quotes, a quote in it escaped (one in a name comes escaped already, RFC 4514). */
function quoted(value: string): string {
  return `"${visible(value).replace(/(?<!\\)"/g, '\\"')}"`;
}

/** A value as it is, or quoted when it holds a separator of the format. */
function plain(value: string): string {
  return /[;,="\s]/.test(value) ? quoted(value) : visible(value);
}

/** Characters outside visible ASCII (and space) as %XX of their UTF-8 bytes. */
function visible(value: string): string {
  return value.replace(/[^\x20-\x7e]/gu, (c) => encodeURIComponent(c));
}
