/**
 * One set of certificate files (a certificate and its key, or a CA file),
 * read and checked together (pem.ts) and watched like the config file
 * (config/watch.ts: in-place edits, renames, the Kubernetes Secret `..data`
 * swap, and the periodic check behind them). A changed set replaces the old
 * one only when it is usable whole; otherwise the old one stays, and the
 * file and the reason are logged and counted. Handshakes after a change use
 * the new set; connections already open keep theirs.
 */
import { FileWatcher } from '../config/watch.ts';
import { log } from '../observe/log.ts';
import { tlsReloadsTotal } from '../observe/metrics.ts';
import type { KeyPair, ReadResult, TlsFileProblem } from './pem.ts';
import { distinguishedName } from './x509.ts';

/** Whose set it is: a listener's (`listener`) or an upstream's client certificate or CA (`upstream`); the other is ''. */
export interface SetOwner {
  readonly listener: string;
  readonly upstream: string;
}

export interface CertificateSetOptions<T> {
  readonly owner: SetOwner;
  /** The files the set is read from, all watched. */
  readonly files: readonly string[];
  /** Reads and checks the files (pem.ts). */
  readonly read: () => ReadResult<T>;
  /** Told of each new usable version (not of the first). */
  readonly onChange: (value: T) => void;
  /** For tests: the watcher's periodic check (default: the config file's). */
  readonly pollMs?: number;
}

/** What the log says of a reloaded set: a pair's certificate, so an operator sees which one is now served. */
function described(value: unknown): object {
  const leaf = (value as Partial<KeyPair>).leaf;
  return leaf ? { subject: distinguishedName(leaf.subject), notAfter: leaf.validToDate.toISOString(), sha256: leaf.fingerprint256 } : {};
}

/** A set of files that could not be read: every problem, one per line. */
export class CertificateSetError extends Error {
  readonly problems: readonly TlsFileProblem[];

  constructor(problems: readonly TlsFileProblem[]) {
    super(problems.map((problem) => problem.message).join('; '));
    this.name = 'CertificateSetError';
    this.problems = problems;
  }
}

export class CertificateSet<T> {
  readonly owner: SetOwner;
  readonly files: readonly string[];
  #value: T;
  #hash: string;
  readonly #options: CertificateSetOptions<T>;
  #watcher: FileWatcher | undefined;

  /** Reads the set now; throws a CertificateSetError when it is not usable. Watching starts with `watch()`. */
  constructor(options: CertificateSetOptions<T>) {
    const result = options.read();
    if (!result.ok) throw new CertificateSetError(result.problems);
    this.owner = options.owner;
    this.files = options.files;
    this.#value = result.value;
    this.#hash = result.hash;
    this.#options = options;
  }

  /** The version in use: the last one that was usable. */
  get value(): T {
    return this.#value;
  }

  /** The content hash of `value`'s files (watch.ts `filesHash`). */
  get hash(): string {
    return this.#hash;
  }

  /** Starts watching the files; a change made since they were read is picked up at once. */
  async watch(): Promise<void> {
    if (this.#watcher) return;
    this.#watcher = new FileWatcher({
      files: this.files,
      hash: this.#hash,
      what: 'certificate',
      onChange: async () => this.#reload(),
      pollMs: this.#options.pollMs,
    });
    await this.#watcher.start();
  }

  close(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  #reload(): void {
    const { owner } = this;
    const result = this.#options.read();
    if (!result.ok) {
      tlsReloadsTotal.inc({ ...owner, result: 'failure' });
      for (const problem of result.problems) {
        log.error({ ...shownOwner(owner), file: problem.file, reason: problem.message }, `certificate reload refused, the previous one stays: ${problem.message}`);
      }
      return;
    }
    // The files may have changed again since the watcher read them: what was read here is what is running.
    this.#watcher?.seen(result.hash);
    this.#value = result.value;
    this.#hash = result.hash;
    tlsReloadsTotal.inc({ ...owner, result: 'success' });
    log.info({ ...shownOwner(owner), files: this.files, ...described(result.value) }, 'certificate files reloaded');
    this.#options.onChange(result.value);
  }
}

/** The owner's non-empty label, for a log line. */
function shownOwner(owner: SetOwner): Partial<SetOwner> {
  return owner.listener ? { listener: owner.listener } : { upstream: owner.upstream };
}

/**
 * Opens several sets for one owner, gathering the problems of all of them (a
 * config with two unusable files hears of both); `done()` throws them
 * together, after closing what was opened.
 */
export class SetOpener {
  readonly #owner: SetOwner;
  readonly #onChange: () => void;
  readonly #problems: TlsFileProblem[] = [];
  readonly #opened: Array<CertificateSet<unknown>> = [];

  constructor(owner: SetOwner, onChange: () => void) {
    this.#owner = owner;
    this.#onChange = onChange;
    // Both series exist from the start, so a dashboard shows 0 rather than nothing.
    for (const result of ['success', 'failure']) tlsReloadsTotal.inc({ ...owner, result }, 0);
  }

  /** The set, or undefined when it is not usable (the problems wait for `done()`). */
  open<T>(files: readonly string[], read: () => ReadResult<T>): CertificateSet<T> | undefined {
    try {
      const set = new CertificateSet<T>({ owner: this.#owner, files, read, onChange: () => this.#onChange() });
      this.#opened.push(set as CertificateSet<unknown>);
      return set;
    } catch (err) {
      if (!(err instanceof CertificateSetError)) throw err;
      this.#problems.push(...err.problems);
      return undefined;
    }
  }

  /** Throws a CertificateSetError with every problem found, when there was one. */
  done(): void {
    if (this.#problems.length === 0) return;
    for (const set of this.#opened) set.close();
    throw new CertificateSetError(this.#problems);
  }
}
