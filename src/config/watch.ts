/**
 * Watches files and says when their content changed: the config file
 * (ConfigWatcher), and the certificate sets of src/tls/ (a certificate, its
 * key and a CA are watched together).
 *
 * The directory is watched, not the file: an editor's rename-replace and the
 * Kubernetes ConfigMap or Secret update (a new `..data` symlink renamed over
 * the old one) leave an inode-bound watch looking at a file nobody uses any
 * more (Envoy's in-place-edit blind spot, the other way round). When a path
 * is a symlink, the directory of its target is watched too, so an edit of the
 * target is seen as well as a swap of the link.
 *
 * Events are debounced (an editor writes in several steps, a rotation writes
 * a certificate and then its key) and the content is compared by sha256 with
 * the last content seen: a touch or a rewrite with the same bytes is no
 * change. A periodic stat backs the watcher up where events are lost
 * (network file systems, a watched directory that was replaced).
 */
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { log } from '../observe/log.ts';

/** Quiet time after the last event before the files are read (editors write in bursts). */
export const DEFAULT_DEBOUNCE_MS = 150;
/** A stream of events never delays a reload by more than this. */
const MAX_DELAY_MS = 1_000;
/** How often the stat/hash backup check runs. */
export const DEFAULT_POLL_MS = 2_000;
/** The loader refuses larger files anyway. */
const MAX_READ_BYTES = 4 * 1024 * 1024;

export interface FileWatcherOptions {
  /** The paths as configured (symlinks are followed, not resolved once). */
  readonly files: readonly string[];
  /** `filesHash` of the content the running state came from. */
  readonly hash: string;
  /** Called when the content changed; the reload reads the files again itself. */
  readonly onChange: () => Promise<unknown>;
  /** What the files are, for the log line of a change ("config file", "certificate"). */
  readonly what?: string;
  readonly debounceMs?: number;
  readonly pollMs?: number;
}

/**
 * The hash of several files' contents from the sha256 (hex) of each: one
 * file's own hash when there is one (the config loader's hash), else a hash
 * of the list.
 */
export function filesHash(hashes: readonly string[]): string {
  return hashes.length === 1 ? hashes[0] : createHash('sha256').update(hashes.join(',')).digest('hex');
}

/** sha256 (hex) of bytes, as `filesHash` wants each file's. */
export function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface ConfigWatcherOptions {
  /** The config path as loaded (symlinks are followed, not resolved once). */
  readonly file: string;
  /** Hash of the content the running config came from. */
  readonly hash: string;
  /** Called when the content changed; the reload reads the file again itself. */
  readonly onChange: () => Promise<unknown>;
  readonly debounceMs?: number;
  readonly pollMs?: number;
}

/** The config file's watcher. */
export class ConfigWatcher {
  readonly #watcher: FileWatcher;

  constructor(options: ConfigWatcherOptions) {
    this.#watcher = new FileWatcher({ ...options, files: [options.file], what: 'config file' });
  }

  /** Starts watching; a change made since the config was loaded is picked up at once. */
  start(): Promise<void> {
    return this.#watcher.start();
  }

  /** The running config now comes from content with this hash (any reload trigger): later events compare with it. */
  seen(hash: string): void {
    this.#watcher.seen(hash);
  }

  close(): void {
    this.#watcher.close();
  }
}

export class FileWatcher {
  readonly #files: readonly string[];
  readonly #what: string;
  readonly #onChange: () => Promise<unknown>;
  readonly #debounceMs: number;
  readonly #pollMs: number;
  /** Watched directory -> the entry names in it that matter. */
  readonly #watchers = new Map<string, { watcher: FSWatcher; names: ReadonlySet<string> }>();
  #lastHash: string;
  #lastStat = '';
  #timer: NodeJS.Timeout | undefined;
  #firstEventAt = 0;
  #poll: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;
  #again = false;
  #closed = false;

  constructor(options: FileWatcherOptions) {
    this.#files = options.files.map((file) => resolve(file));
    this.#what = options.what ?? 'file';
    this.#lastHash = options.hash;
    this.#onChange = options.onChange;
    this.#debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    this.#pollMs = options.pollMs ?? DEFAULT_POLL_MS;
  }

  /** Starts watching; a change made since the files were loaded is picked up at once. */
  async start(): Promise<void> {
    await this.#arm();
    this.#poll = setInterval(() => void this.#pollOnce(), this.#pollMs);
    this.#poll.unref();
    void this.#check();
  }

  /** The running state now comes from content with this hash (any reload trigger): later events compare with it. */
  seen(hash: string): void {
    this.#lastHash = hash;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearInterval(this.#poll);
    for (const { watcher } of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
  }

  /** Watches each file's directory and, when a path is a symlink, its target's; drops watches no longer needed. */
  async #arm(): Promise<void> {
    const wanted = new Map<string, Set<string>>();
    const want = (path: string, ...names: string[]) => {
      const entry = wanted.get(dirname(path)) ?? new Set<string>();
      for (const name of names) entry.add(name);
      wanted.set(dirname(path), entry);
    };
    for (const file of this.#files) {
      want(file, basename(file), '..data');
      const target = await realpath(file).catch(() => undefined);
      if (target !== undefined && target !== file) want(target, basename(target));
    }
    if (this.#closed) return;
    for (const [dir, entry] of this.#watchers) {
      const names = wanted.get(dir);
      if (names && [...names].every((name) => entry.names.has(name))) continue;
      entry.watcher.close();
      this.#watchers.delete(dir);
    }
    for (const [dir, names] of wanted) {
      if (this.#watchers.has(dir)) continue;
      try {
        const watcher = watch(dir, { persistent: false }, (_event, name) => {
          if (name === null || names.has(String(name))) this.#schedule();
        });
        watcher.on('error', () => {
          // The directory went away (an old ConfigMap or Secret revision): the next check re-arms.
          watcher.close();
          if (this.#watchers.get(dir)?.watcher === watcher) this.#watchers.delete(dir);
        });
        this.#watchers.set(dir, { watcher, names });
      } catch (err) {
        log.debug({ err, dir }, `cannot watch the ${this.#what}'s directory; the periodic check still runs`);
      }
    }
  }

  /** Trailing debounce, capped so a steady stream of events cannot hold a reload back for ever. */
  #schedule(): void {
    if (this.#closed) return;
    const now = Date.now();
    if (this.#firstEventAt === 0) this.#firstEventAt = now;
    clearTimeout(this.#timer);
    const delay = Math.max(0, Math.min(this.#debounceMs, this.#firstEventAt + MAX_DELAY_MS - now));
    this.#timer = setTimeout(() => {
      this.#firstEventAt = 0;
      void this.#check();
    }, delay);
  }

  async #pollOnce(): Promise<void> {
    if ((await this.#statSignature()) !== this.#lastStat) await this.#check();
    else await this.#arm();
  }

  #statSignature(): Promise<string> {
    return Promise.all(this.#files.map(statSignature)).then((each) => each.join('|'));
  }

  /** One check at a time; a request during a check runs one more after it. */
  #check(): Promise<void> {
    if (this.#checking) {
      this.#again = true;
      return this.#checking;
    }
    this.#checking = (async () => {
      do {
        this.#again = false;
        await this.#checkOnce().catch((err: unknown) => log.error({ err, files: this.#files }, `${this.#what} watch check failed`));
      } while (this.#again && !this.#closed);
      this.#checking = undefined;
    })();
    return this.#checking;
  }

  async #checkOnce(): Promise<void> {
    if (this.#closed) return;
    this.#lastStat = await this.#statSignature();
    const hash = filesHash(await Promise.all(this.#files.map(contentHash)));
    await this.#arm();
    if (hash === this.#lastHash || this.#closed) return;
    this.#lastHash = hash;
    const source = this.#files.length === 1 ? this.#files[0] : this.#files;
    log.info({ source, hash }, `${this.#what} changed, reloading`);
    await this.#onChange();
  }
}

/** Identity and version of what the path points at now (symlinks followed). */
async function statSignature(file: string): Promise<string> {
  try {
    const info = await stat(file, { bigint: true });
    return `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
  } catch (err) {
    return `error:${(err as { code?: string }).code}`;
  }
}

/** sha256 of the content, the same as the loader's; an unreadable file has a hash of its error, so it is reported once. */
async function contentHash(file: string): Promise<string> {
  try {
    // Never read a FIFO or a device (it may block for ever) or something far too large to be a config.
    const info = await stat(file);
    if (!info.isFile()) return 'error:not-a-file';
    if (info.size > MAX_READ_BYTES) return `error:too-large:${info.size}:${info.mtimeMs}`;
    return sha256Hex(await readFile(file));
  } catch (err) {
    return `error:${(err as { code?: string }).code}`;
  }
}
