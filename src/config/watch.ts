/**
 * Watches the config file and asks for a reload when its content changed.
 *
 * The directory is watched, not the file: an editor's rename-replace and the
 * Kubernetes ConfigMap update (a new `..data` symlink renamed over the old
 * one) leave an inode-bound watch looking at a file nobody uses any more
 * (Envoy's in-place-edit blind spot, the other way round). When the config
 * path is a symlink, the directory of its target is watched too, so an edit
 * of the target is seen as well as a swap of the link.
 *
 * Events are debounced (an editor writes in several steps) and the content is
 * compared by sha256 with the last content seen: a touch or a rewrite with the
 * same bytes is no reload. A periodic stat backs the watcher up where events
 * are lost (network file systems, a watched directory that was replaced).
 */
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { log } from '../observe/log.ts';

/** Quiet time after the last event before the file is read (editors write in bursts). */
export const DEFAULT_DEBOUNCE_MS = 150;
/** A stream of events never delays a reload by more than this. */
const MAX_DELAY_MS = 1_000;
/** How often the stat/hash backup check runs. */
export const DEFAULT_POLL_MS = 2_000;
/** The loader refuses larger files anyway. */
const MAX_READ_BYTES = 4 * 1024 * 1024;

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

export class ConfigWatcher {
  readonly #file: string;
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

  constructor(options: ConfigWatcherOptions) {
    this.#file = resolve(options.file);
    this.#lastHash = options.hash;
    this.#onChange = options.onChange;
    this.#debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    this.#pollMs = options.pollMs ?? DEFAULT_POLL_MS;
  }

  /** Starts watching; a change made since the config was loaded is picked up at once. */
  async start(): Promise<void> {
    await this.#arm();
    this.#poll = setInterval(() => void this.#pollOnce(), this.#pollMs);
    this.#poll.unref();
    void this.#check();
  }

  /** The running config now comes from content with this hash (any reload trigger): later events compare with it. */
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

  /** Watches the config's directory and, when the path is a symlink, its target's; drops watches no longer needed. */
  async #arm(): Promise<void> {
    const wanted = new Map<string, Set<string>>([[dirname(this.#file), new Set([basename(this.#file), '..data'])]]);
    const target = await realpath(this.#file).catch(() => undefined);
    if (target !== undefined && target !== this.#file) {
      const names = wanted.get(dirname(target)) ?? new Set<string>();
      names.add(basename(target));
      wanted.set(dirname(target), names);
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
          // The directory went away (an old ConfigMap revision): the next check re-arms.
          watcher.close();
          if (this.#watchers.get(dir)?.watcher === watcher) this.#watchers.delete(dir);
        });
        this.#watchers.set(dir, { watcher, names });
      } catch (err) {
        log.debug({ err, dir }, 'cannot watch the config directory; the periodic check still runs');
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
    if ((await statSignature(this.#file)) !== this.#lastStat) await this.#check();
    else await this.#arm();
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
        await this.#checkOnce().catch((err: unknown) => log.error({ err }, 'config watch check failed'));
      } while (this.#again && !this.#closed);
      this.#checking = undefined;
    })();
    return this.#checking;
  }

  async #checkOnce(): Promise<void> {
    if (this.#closed) return;
    this.#lastStat = await statSignature(this.#file);
    const hash = await contentHash(this.#file);
    await this.#arm();
    if (hash === this.#lastHash || this.#closed) return;
    this.#lastHash = hash;
    log.info({ source: this.#file, hash }, 'config file changed, reloading');
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
    return createHash('sha256').update(await readFile(file)).digest('hex');
  } catch (err) {
    return `error:${(err as { code?: string }).code}`;
  }
}
