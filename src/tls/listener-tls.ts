/**
 * A TLS listener's certificates as one provider (STYLE 13, Envoy's SDS in
 * small): the default certificate, the SNI certificates and the client CA,
 * each a watched CertificateSet, make one immutable TlsGeneration (the TLS
 * server's options and the SNI map of ready SecureContexts). A changed set or
 * a reload that changes `tls` makes a new generation, swapped whole; the
 * listener's front door (front-door.ts) takes the current one for each new
 * connection, so handshakes after a swap get the new certificates and open
 * connections keep theirs. Listeners never read files.
 */
import { createSecureContext, type SecureContext, type TlsOptions } from 'node:tls';
import type { ListenerName } from '../config/compile.ts';
import type { ListenerTlsConfig } from '../config/schema.ts';
import { log } from '../observe/log.ts';
import { tlsExpirySources, tlsReloadsTotal, type ExpirySample } from '../observe/metrics.ts';
import { CertificateSetError, SetOpener, type CertificateSet } from './cert-set.ts';
import { FrontDoor, type Handoff } from './front-door.ts';
import { readCa, readKeyPair, type CaBundle, type KeyPair } from './pem.ts';
import { SniMap } from './sni.ts';
import { certificateView, type CertificateView } from './x509.ts';

/** What a listener's TLS comes from: its `tls` block and the time a client has for its handshake. */
export interface ListenerTlsSettings {
  readonly tls: ListenerTlsConfig;
  /** The listener's headersTimeout: a client that has not finished its handshake by then has sent no request either. */
  readonly headersTimeout: number;
}

/** Everything a handshake needs, fixed for the handshakes that start while it is current. */
export interface TlsGeneration {
  readonly listener: ListenerName;
  readonly settings: ListenerTlsConfig;
  /** Options of the tls.Server that takes this generation's handshakes: the default certificate, the client CA, versions. */
  readonly serverOptions: TlsOptions;
  readonly sni: SniMap<SecureContext>;
  /** ms until a connection must have sent its first byte, and then finished its handshake. */
  readonly handshakeTimeout: number;
}

/** One certificate in GET /certs: whose, what for, and the certificate itself. */
export interface ListenerCertificate extends CertificateView {
  readonly listener: ListenerName;
  /** `default`: served when no SNI entry matches; `sni`: served for `serverNames`; `client-ca`: client certificates must chain to it. */
  readonly use: 'default' | 'sni' | 'client-ca';
  readonly serverNames?: readonly string[];
}

interface Sets {
  readonly pair: CertificateSet<KeyPair>;
  readonly ca: CertificateSet<CaBundle> | undefined;
  readonly sni: ReadonlyArray<{ readonly serverNames: readonly string[]; readonly set: CertificateSet<KeyPair> }>;
}

/** A reload's TLS part, ready to commit once the rest of the reload succeeded. */
export type PreparedTls = { readonly ok: true; commit(): void; abort(): void } | { readonly ok: false; readonly errors: readonly string[] };

export interface ListenerTlsOptions {
  /** Whether an answer to plain HTTP on the TLS port gets an access line (`log.access` of the live config). */
  readonly accessLog: () => boolean;
}

export class ListenerTls {
  readonly listener: ListenerName;
  readonly accessLog: () => boolean;
  #settings: ListenerTlsSettings;
  #sets: Sets;
  #generation: TlsGeneration;
  #watching = false;
  readonly #expiry = (): ExpirySample[] => this.#expirySamples();

  /** Reads every certificate set now; throws a CertificateSetError when one is not usable. */
  constructor(listener: ListenerName, settings: ListenerTlsSettings, options: ListenerTlsOptions) {
    this.listener = listener;
    this.accessLog = options.accessLog;
    this.#settings = settings;
    this.#sets = this.#open(settings.tls);
    this.#generation = generation(listener, settings, this.#sets);
    tlsExpirySources.add(this.#expiry);
  }

  /** The generation new connections get now. */
  get generation(): TlsGeneration {
    return this.#generation;
  }

  /** A front door for one server of the listener: `handoff` gets each connection once its handshake is done. */
  frontDoor(handoff: Handoff): FrontDoor {
    return new FrontDoor(this, handoff);
  }

  /** Starts watching every file. */
  async watch(): Promise<void> {
    this.#watching = true;
    await Promise.all(setsOf(this.#sets).map((set) => set.watch()));
  }

  /**
   * A reload: a `tls` block (or headersTimeout) that changed is read whole
   * now; committing swaps it in, aborting drops it. An unusable set fails the
   * reload, counted like a failed rotation; the running sets stay.
   */
  prepare(next: ListenerTlsSettings): PreparedTls {
    if (JSON.stringify(next) === JSON.stringify(this.#settings)) return { ok: true, commit: () => undefined, abort: () => undefined };
    let sets: Sets;
    let built: TlsGeneration;
    try {
      sets = this.#open(next.tls);
      built = generation(this.listener, next, sets);
    } catch (err) {
      tlsReloadsTotal.inc({ listener: this.listener, upstream: '', result: 'failure' });
      const problems = err instanceof CertificateSetError ? err.problems.map((problem) => problem.message) : [(err as Error).message];
      return { ok: false, errors: problems.map((problem) => `${this.listener}.tls: ${problem}`) };
    }
    return {
      ok: true,
      commit: () => {
        for (const set of setsOf(this.#sets)) set.close();
        this.#settings = next;
        this.#sets = sets;
        this.#generation = built;
        tlsReloadsTotal.inc({ listener: this.listener, upstream: '', result: 'success' });
        if (this.#watching) void this.watch();
      },
      abort: () => undefined,
    };
  }

  /** Every certificate in use, for GET /certs. */
  certificates(now: number = Date.now()): ListenerCertificate[] {
    const { pair, ca, sni } = this.#sets;
    const listener = this.listener;
    return [
      { listener, use: 'default' as const, ...certificateView(pair.value.leaf, pair.value.certFile, now) },
      ...sni.map(({ serverNames, set }) => ({ listener, use: 'sni' as const, serverNames, ...certificateView(set.value.leaf, set.value.certFile, now) })),
      ...(ca?.value.certificates.map((certificate) => ({ listener, use: 'client-ca' as const, ...certificateView(certificate, ca.value.file, now) })) ?? []),
    ];
  }

  close(): void {
    for (const set of setsOf(this.#sets)) set.close();
    tlsExpirySources.delete(this.#expiry);
  }

  #open(tls: ListenerTlsConfig): Sets {
    const opener = new SetOpener({ listener: this.listener, upstream: '' }, () => this.#rebuild());
    const pairOf = (cert: string, key: string) => opener.open([cert, key], () => readKeyPair(cert, key, { allowExpired: tls.allowExpired }));
    const pair = pairOf(tls.cert, tls.key);
    const caFile = tls.ca;
    const ca = caFile === undefined ? undefined : opener.open([caFile], () => readCa(caFile));
    const sni = tls.sni.map(({ serverNames, cert, key }) => ({ serverNames, set: pairOf(cert, key) }));
    opener.done();
    return { pair: pair!, ca, sni: sni.map(({ serverNames, set }) => ({ serverNames, set: set! })) };
  }

  /** A set changed: the next generation from what every set holds now. */
  #rebuild(): void {
    try {
      this.#generation = generation(this.listener, this.#settings, this.#sets);
    } catch (err) {
      // The files were read and checked: only OpenSSL refusing what Node's checks let through lands here.
      log.error({ err, listener: this.listener }, 'the changed certificates could not be used; the previous ones stay');
    }
  }

  #expirySamples(): ExpirySample[] {
    const sample = (serverName: string, pair: KeyPair): ExpirySample => ({
      labels: { listener: this.listener, upstream: '', serverName },
      notAfter: pair.leaf.validToDate.getTime(),
    });
    const { pair, sni } = this.#sets;
    return [sample('', pair.value), ...sni.flatMap(({ serverNames, set }) => serverNames.map((name) => sample(name, set.value)))];
  }
}

function setsOf(sets: Sets): Array<CertificateSet<unknown>> {
  return [sets.pair, ...(sets.ca ? [sets.ca] : []), ...sets.sni.map(({ set }) => set)] as Array<CertificateSet<unknown>>;
}

/** The generation the sets make now. Throws when OpenSSL refuses the material (a cipher list it does not know). */
function generation(listener: ListenerName, { tls, headersTimeout }: ListenerTlsSettings, sets: Sets): TlsGeneration {
  const ca = sets.ca?.value.pem;
  // Each SNI context carries the versions and the client CA too: a handshake may continue on it once the name is known.
  const common: TlsOptions = { minVersion: tls.minVersion, ...(tls.ciphers ? { ciphers: tls.ciphers } : {}), ...(ca ? { ca } : {}) };
  const sni = SniMap.of(
    sets.sni.map(({ serverNames, set }) => ({ serverNames, value: createSecureContext({ ...common, cert: set.value.cert, key: set.value.key }) })),
  );
  const serverOptions: TlsOptions = {
    ...common,
    cert: sets.pair.value.cert,
    key: sets.pair.value.key,
    // Verification is judged after the handshake (front-door.ts), so that a refused client certificate is logged and counted.
    requestCert: tls.clientAuth !== 'none',
    rejectUnauthorized: false,
  };
  // Built once here: an unusable combination fails now, not in the first handshake.
  createSecureContext(serverOptions);
  return Object.freeze({ listener, settings: tls, serverOptions, sni, handshakeTimeout: headersTimeout });
}
