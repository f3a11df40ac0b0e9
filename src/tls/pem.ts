/**
 * Certificate files -> validated material, or why not. The one place that
 * reads and judges them: the config checks (config/semantic.ts), a listener's
 * certificate sets and an upstream's client certificate all ask here, so
 * `check`, a start and a rotation refuse the same things in the same words.
 *
 * A pair is usable when both files parse, the key is the certificate's, and
 * the certificate is valid now (unless `allowExpired`). A CA file is usable
 * when it holds at least one certificate and every one parses.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { errnoText } from '../config/errors.ts';
import { filesHash, sha256Hex } from '../config/watch.ts';

/** Far above any real chain or bundle (the Mozilla CA bundle is about 220 KiB). */
const MAX_PEM_BYTES = 4 * 1024 * 1024;

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Which file of a set a problem is about (the config key it came from). */
export type TlsFileField = 'cert' | 'key' | 'ca';

/** Why a set cannot be used: which file, and a sentence that names it. */
export interface TlsFileProblem {
  readonly field: TlsFileField;
  readonly file: string;
  readonly message: string;
  /** The certificate is outside its validity period (an error to start and reload with unless allowed; `check` warns). */
  readonly expired?: boolean;
}

/** A certificate (with its chain) and its private key, read and checked together. */
export interface KeyPair {
  readonly certFile: string;
  readonly keyFile: string;
  /** PEM: the certificate, then its chain. */
  readonly cert: Buffer;
  /** PEM private key. */
  readonly key: Buffer;
  /** The first certificate of `cert`: the one the key belongs to. */
  readonly leaf: X509Certificate;
}

/** A CA file: the certificates peers must chain to. */
export interface CaBundle {
  readonly file: string;
  readonly pem: Buffer;
  readonly certificates: readonly X509Certificate[];
}

/** A set read whole: its value and the hash of its files' contents (watch.ts's `filesHash`), or every problem found. */
export type ReadResult<T> = { readonly ok: true; readonly value: T; readonly hash: string } | { readonly ok: false; readonly problems: readonly TlsFileProblem[] };

/** Reads a certificate and its key and checks them against each other and the clock. */
export function readKeyPair(certFile: string, keyFile: string, options: { allowExpired: boolean; now?: number }): ReadResult<KeyPair> {
  const problems: TlsFileProblem[] = [];
  const cert = readPem('cert', certFile, problems);
  const key = readPem('key', keyFile, problems);
  const chain = cert && parseCertificates('cert', certFile, cert, problems);
  const privateKey = key && parseKey(keyFile, key, problems);
  const leaf = chain?.[0];
  if (leaf && privateKey && !leaf.checkPrivateKey(privateKey)) {
    problems.push({ field: 'key', file: keyFile, message: `key ${keyFile} does not match the certificate in ${certFile} (is it the key of another certificate?)` });
  }
  if (leaf && !options.allowExpired) {
    const validity = validityProblem(leaf, options.now ?? Date.now());
    if (validity) problems.push({ field: 'cert', file: certFile, message: `certificate ${certFile} ${validity}`, expired: true });
  }
  if (problems.length > 0 || !cert || !key || !leaf) return { ok: false, problems };
  return { ok: true, value: { certFile, keyFile, cert, key, leaf }, hash: filesHash([sha256Hex(cert), sha256Hex(key)]) };
}

/** Reads a CA file; every certificate in it must parse. */
export function readCa(file: string): ReadResult<CaBundle> {
  const problems: TlsFileProblem[] = [];
  const pem = readPem('ca', file, problems);
  const certificates = pem && parseCertificates('ca', file, pem, problems);
  if (!pem || !certificates) return { ok: false, problems };
  return { ok: true, value: { file, pem, certificates }, hash: sha256Hex(pem) };
}

/**
 * Why a certificate is not valid at `now` ("expired on ..."), or undefined. A
 * certificate not valid yet counts too: every client refuses it alike.
 */
export function validityProblem(certificate: X509Certificate, now: number): string | undefined {
  const notAfter = certificate.validToDate.getTime();
  const notBefore = certificate.validFromDate.getTime();
  if (now > notAfter) return `expired on ${certificate.validToDate.toISOString()} (${Math.ceil((now - notAfter) / DAY_MS)} days ago)`;
  if (now < notBefore) return `is not valid before ${certificate.validFromDate.toISOString()}`;
  return undefined;
}

const DAY_MS = 86_400_000;

/** Whole days from `now` to the end of the certificate's validity (negative once expired). */
export function daysLeft(certificate: X509Certificate, now: number = Date.now()): number {
  return Math.floor((certificate.validToDate.getTime() - now) / DAY_MS);
}

/** The file's bytes; a problem (and undefined) when it is missing, not a regular file or too large. */
function readPem(field: TlsFileField, file: string, problems: TlsFileProblem[]): Buffer | undefined {
  const what = FILE_NAMES[field];
  try {
    // stat first: reading a FIFO or a device would block, or never end.
    const info = statSync(file);
    if (!info.isFile()) return void problems.push({ field, file, message: `${what} ${file} is not a regular file` });
    if (info.size > MAX_PEM_BYTES) return void problems.push({ field, file, message: `${what} ${file} is too large for a PEM file (${info.size} bytes)` });
    return readFileSync(file);
  } catch (error) {
    problems.push({ field, file, message: `cannot read ${what} ${file}: it ${errnoText(error)}` });
    return undefined;
  }
}

const FILE_NAMES: Record<TlsFileField, string> = { cert: 'certificate file', key: 'key file', ca: 'CA file' };

/** Every certificate of a PEM file, in order; a problem when there is none or one does not parse. */
function parseCertificates(field: TlsFileField, file: string, pem: Buffer, problems: TlsFileProblem[]): X509Certificate[] | undefined {
  const text = pem.toString('latin1');
  const blocks = text.match(CERTIFICATE_BLOCK) ?? [];
  if (blocks.length === 0) {
    const swapped = /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text) ? ' (it holds a private key: are cert and key swapped?)' : '';
    problems.push({ field, file, message: `${FILE_NAMES[field]} ${file} holds no PEM certificate${swapped}` });
    return undefined;
  }
  const certificates: X509Certificate[] = [];
  for (const [index, block] of blocks.entries()) {
    try {
      certificates.push(new X509Certificate(block));
    } catch (error) {
      const which = blocks.length === 1 ? 'its certificate' : `certificate ${index + 1} of ${blocks.length}`;
      problems.push({ field, file, message: `${FILE_NAMES[field]} ${file}: ${which} does not parse (${(error as Error).message})` });
      return undefined;
    }
  }
  return certificates;
}

/** The private key; a problem when it is not one, or is encrypted (there is nowhere to give a passphrase). */
function parseKey(file: string, pem: Buffer, problems: TlsFileProblem[]): ReturnType<typeof createPrivateKey> | undefined {
  try {
    return createPrivateKey({ key: pem, format: 'pem' });
  } catch (error) {
    const code = (error as { code?: string }).code;
    const message =
      code === 'ERR_MISSING_PASSPHRASE'
        ? `key file ${file} is encrypted: give an unencrypted key (openssl pkey -in KEY -out KEY.plain)`
        : `key file ${file} holds no usable PEM private key`;
    problems.push({ field: 'key', file, message });
    return undefined;
  }
}
