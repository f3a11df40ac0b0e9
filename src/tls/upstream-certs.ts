/**
 * The files of the upstreams' `tls` blocks (a client certificate with its
 * key, a CA), read, checked and watched like a listener's (cert-set.ts). The
 * registry takes each upstream's material when it builds pools, and its
 * content hash is part of the pool key: a rotated file that is usable makes
 * the registry build again, so new requests get a new pool with the new files
 * and the old pool drains. (Before, the CA was read once and the pool keyed
 * on its path: a CA replaced at the same path was never seen.)
 */
import type { UpstreamConfig } from '../config/schema.ts';
import { filesHash } from '../config/watch.ts';
import { tlsExpirySources, type ExpirySample } from '../observe/metrics.ts';
import { CertificateSetError, SetOpener, type CertificateSet } from './cert-set.ts';
import { readCa, readKeyPair, type CaBundle, type KeyPair, type TlsFileProblem } from './pem.ts';
import { certificateView, type CertificateView } from './x509.ts';

/** What a TLS connection to an upstream's endpoints presents and trusts, as read from its files. */
export interface UpstreamTlsMaterial {
  /** PEM of the CAs to trust instead of the system's. */
  readonly ca?: Buffer;
  /** PEM client certificate (and chain) and its key. */
  readonly cert?: Buffer;
  readonly key?: Buffer;
  /** Identity of the content: a pool built from other content is another pool. */
  readonly hash: string;
}

/** One certificate in GET /certs. */
export interface UpstreamCertificate extends CertificateView {
  readonly upstream: string;
  /** `client`: presented to the endpoints; `ca`: their certificates must chain to it. */
  readonly use: 'client' | 'ca';
}

interface Entry {
  /** The files and options the sets were opened for: a change opens new ones. */
  readonly key: string;
  readonly serverName: string;
  readonly pair: CertificateSet<KeyPair> | undefined;
  readonly ca: CertificateSet<CaBundle> | undefined;
}

export class UpstreamCertificates {
  readonly #entries = new Map<string, Entry>();
  readonly #onChange: () => void;
  readonly #expiry = (): ExpirySample[] => this.#expirySamples();

  /** `onChange` is told when a watched file changed and the new version is usable. */
  constructor(onChange: () => void) {
    this.#onChange = onChange;
    tlsExpirySources.add(this.#expiry);
  }

  /**
   * Opens (reads, checks, starts watching) the files of every upstream's
   * `tls` block not open yet, and closes those no longer named. Throws a
   * CertificateSetError when a file is not usable, before anything changed.
   */
  sync(upstreams: Readonly<Record<string, UpstreamConfig>>): void {
    const opened = new Map<string, Entry>();
    const problems: TlsFileProblem[] = [];
    for (const [name, config] of Object.entries(upstreams)) {
      const tls = config.tls;
      if (!namesFiles(tls)) continue;
      const key = JSON.stringify([tls.ca, tls.cert, tls.key, tls.allowExpired]);
      if (this.#entries.get(name)?.key === key) continue;
      const opener = new SetOpener({ listener: '', upstream: name }, () => this.#onChange());
      const { cert, key: keyFile, ca } = tls;
      const pair = cert !== undefined && keyFile !== undefined ? opener.open([cert, keyFile], () => readKeyPair(cert, keyFile, { allowExpired: tls.allowExpired })) : undefined;
      const caSet = ca === undefined ? undefined : opener.open([ca], () => readCa(ca));
      try {
        opener.done();
        opened.set(name, { key, serverName: tls.serverName ?? '', pair, ca: caSet });
      } catch (err) {
        if (!(err instanceof CertificateSetError)) throw err;
        problems.push(...err.problems);
      }
    }
    if (problems.length > 0) {
      for (const entry of opened.values()) closeEntry(entry);
      throw new CertificateSetError(problems);
    }
    for (const [name, entry] of this.#entries) {
      if (opened.has(name) || namesFiles(upstreams[name]?.tls)) continue;
      closeEntry(entry);
      this.#entries.delete(name);
    }
    for (const [name, entry] of opened) {
      const previous = this.#entries.get(name);
      if (previous) closeEntry(previous);
      this.#entries.set(name, entry);
      for (const set of [entry.pair, entry.ca]) void set?.watch();
    }
  }

  /** The material of `upstream`'s files now; undefined when its `tls` names none. */
  material(upstream: string): UpstreamTlsMaterial | undefined {
    const entry = this.#entries.get(upstream);
    if (!entry) return undefined;
    const pair = entry.pair?.value;
    const ca = entry.ca?.value;
    // Of what is in use: each set keeps the last usable version of its files.
    const hash = filesHash([entry.pair?.hash ?? '', entry.ca?.hash ?? '']);
    return { ...(ca ? { ca: ca.pem } : {}), ...(pair ? { cert: pair.cert, key: pair.key } : {}), hash };
  }

  certificates(now: number = Date.now()): UpstreamCertificate[] {
    return [...this.#entries].flatMap(([upstream, { pair, ca }]) => [
      ...(pair ? [{ upstream, use: 'client' as const, ...certificateView(pair.value.leaf, pair.value.certFile, now) }] : []),
      ...(ca?.value.certificates.map((certificate) => ({ upstream, use: 'ca' as const, ...certificateView(certificate, ca.value.file, now) })) ?? []),
    ]);
  }

  close(): void {
    for (const entry of this.#entries.values()) closeEntry(entry);
    this.#entries.clear();
    tlsExpirySources.delete(this.#expiry);
  }

  #expirySamples(): ExpirySample[] {
    return [...this.#entries].flatMap(([upstream, { pair, serverName }]) =>
      pair ? [{ labels: { listener: '', upstream, serverName }, notAfter: pair.value.leaf.validToDate.getTime() }] : [],
    );
  }
}

function namesFiles(tls: UpstreamConfig['tls']): tls is NonNullable<UpstreamConfig['tls']> {
  return tls !== undefined && (tls.ca !== undefined || tls.cert !== undefined);
}

function closeEntry(entry: Entry): void {
  entry.pair?.close();
  entry.ca?.close();
}
