/**
 * A throw-away PKI for TLS tests: a CA and one server certificate signed by
 * it, made with the openssl CLI in a temp folder, valid for a day. Clients
 * trust the CA file (curl --cacert, NODE_EXTRA_CA_CERTS, an ssl context).
 * `TestCa` issues any number of server and client certificates, expired ones
 * included. Keys live in temp folders only: none is ever committed.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
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

/** A certificate issued by a TestCa: PEMs, the files holding them, and its SHA-256 fingerprint (as Node prints it). */
export interface IssuedCert {
  readonly cert: string;
  readonly key: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly fingerprint: string;
}

export interface IssueOptions {
  /** DNS names (SAN); default: the common name. */
  readonly dns?: readonly string[];
  readonly ips?: readonly string[];
  /** A client certificate (extendedKeyUsage clientAuth) instead of a server one. */
  readonly client?: boolean;
  /** Already expired: valid for one day in 2020. */
  readonly expired?: boolean;
}

/** A CA in a temp folder that signs certificates with `openssl ca` (which, unlike `x509 -req`, takes any validity dates). */
export class TestCa {
  readonly dir: string;
  readonly caFile: string;
  readonly ca: string;
  #serial = 0;

  constructor(name = 'sidecar test CA') {
    this.dir = mkdtempSync(join(tmpdir(), 'sidecar-ca-'));
    const curve = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    writeFileSync(this.#at('index.txt'), '');
    writeFileSync(this.#at('serial'), '1000\n');
    writeFileSync(
      this.#at('ca.cnf'),
      '[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = any\nunique_subject = no\n[any]\ncommonName = supplied\n',
    );
    this.#openssl('req', '-x509', ...curve, '-keyout', this.#at('ca.key'), '-out', this.#at('ca.pem'), '-days', '2', '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    this.caFile = this.#at('ca.pem');
    this.ca = readFileSync(this.caFile, 'utf8');
  }

  /** A certificate for `commonName` signed by this CA, written to files of its own in the CA's folder. */
  issue(commonName: string, options: IssueOptions = {}): IssuedCert {
    const base = `leaf-${++this.#serial}`;
    const names = [...(options.dns ?? (options.ips ? [] : [commonName])).map((name) => `DNS:${name}`), ...(options.ips ?? []).map((ip) => `IP:${ip}`)];
    const usage = options.client ? 'clientAuth' : 'serverAuth';
    writeFileSync(
      this.#at(`${base}.ext`),
      `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=${usage}\n${names.length > 0 ? `subjectAltName=${names.join(',')}\n` : ''}`,
    );
    this.#openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', this.#at(`${base}.key`), '-out', this.#at(`${base}.csr`), '-subj', `/CN=${commonName}`);
    const dates = options.expired ? ['-startdate', '20200101000000Z', '-enddate', '20200102000000Z'] : ['-days', '2'];
    this.#openssl('ca', '-batch', '-config', this.#at('ca.cnf'), '-cert', this.caFile, '-keyfile', this.#at('ca.key'), '-in', this.#at(`${base}.csr`),
      '-out', this.#at(`${base}.pem`), '-extfile', this.#at(`${base}.ext`), '-notext', ...dates);
    const cert = readFileSync(this.#at(`${base}.pem`), 'utf8');
    return { cert, key: readFileSync(this.#at(`${base}.key`), 'utf8'), certFile: this.#at(`${base}.pem`), keyFile: this.#at(`${base}.key`), fingerprint: new X509Certificate(cert).fingerprint256 };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  #at(file: string): string {
    return join(this.dir, file);
  }

  #openssl(...args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  }
}

/**
 * The SHA-256 fingerprint of the certificate a new TLS connection to
 * 127.0.0.1:`port` is served, asking for `servername` (none: no SNI). The
 * chain is verified against `ca`; the name is not (which certificate came is
 * the question).
 */
export function servedCertificate(port: number, ca: string, servername?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername, ca, checkServerIdentity: () => undefined }, () => {
      const fingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
      socket.end();
      resolve(fingerprint);
    });
    socket.once('error', reject);
    socket.setTimeout(3_000, () => socket.destroy(new Error('handshake timed out')));
  });
}
