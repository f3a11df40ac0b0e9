/**
 * A throw-away PKI for TLS tests: a CA and one server certificate signed by
 * it, made with the openssl CLI in a temp folder, valid for a day. Clients
 * trust the CA file (curl --cacert, NODE_EXTRA_CA_CERTS, an ssl context).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listenOnLoopback } from './servers.ts';

export interface TestPki {
  readonly dir: string;
  /** PEM of the CA certificate, and the file holding it. */
  readonly ca: string;
  readonly caFile: string;
  /** The server's key and certificate (PEM). */
  readonly key: string;
  readonly cert: string;
  remove(): void;
}

/** A CA and a server certificate for `names` (DNS) and `ips`, signed by that CA. */
export function makeTestPki(names: readonly string[] = ['localhost', 'secure.test'], ips: readonly string[] = ['127.0.0.1']): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'sidecar-pki-'));
  const at = (file: string) => join(dir, file);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const curve = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

  openssl('req', '-x509', ...curve, '-keyout', at('ca.key'), '-out', at('ca.pem'), '-days', '1', '-subj', '/CN=sidecar test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', ...curve, '-keyout', at('server.key'), '-out', at('server.csr'), '-subj', `/CN=${names[0] ?? 'localhost'}`);
  const san = [...names.map((name) => `DNS:${name}`), ...ips.map((ip) => `IP:${ip}`)].join(',');
  writeFileSync(
    at('server.ext'),
    `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`,
  );
  openssl('x509', '-req', '-in', at('server.csr'), '-CA', at('ca.pem'), '-CAkey', at('ca.key'), '-CAcreateserial',
    '-out', at('server.pem'), '-days', '1', '-extfile', at('server.ext'));

  return {
    dir,
    ca: readFileSync(at('ca.pem'), 'utf8'),
    caFile: at('ca.pem'),
    key: readFileSync(at('server.key'), 'utf8'),
    cert: readFileSync(at('server.pem'), 'utf8'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface TestHttpsServer {
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

/** An HTTPS server on 127.0.0.1:0 with the PKI's server certificate. */
export async function startHttpsServer(pki: TestPki, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestHttpsServer> {
  return listenOnLoopback(createHttpsServer({ key: pki.key, cert: pki.cert }, handler));
}
