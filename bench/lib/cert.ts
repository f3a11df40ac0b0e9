/**
 * The certificate of the HTTPS scenarios: one self-signed ECDSA P-256
 * certificate for 127.0.0.1, made with openssl in the run's temp dir and
 * served by NGINX and the sidecar alike (the load generator does not verify
 * it). Without openssl the HTTPS peers are skipped with the reason.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchCertificate } from './configs.ts';

export function makeCertificate(tmp: string): BenchCertificate | string {
  const cert = join(tmp, 'bench.crt');
  const key = join(tmp, 'bench.key');
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
      '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
  } catch (err) {
    return `no certificate for the HTTPS peers: openssl failed (${(err as Error).message.split('\n')[0]})`;
  }
  // NGINX reads its key as root before it drops privileges; readable by the owner is enough.
  chmodSync(key, 0o600);
  return { cert, key };
}
