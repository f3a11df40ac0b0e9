/**
 * Remembers path resolutions (realpath + stat, missing files included) for a
 * short window, so a hot file costs no filesystem call at all: without it each
 * request paid two realpath and one stat round trips through libuv's thread
 * pool. NGINX's open_file_cache does the same with a 60 s window; ours
 * defaults to 250 ms (`static.cache.revalidate`), so a deployed change, a
 * symlink swap or a new file shows within that time. 0 turns it off.
 */
import { realRootOf, resolveInside, type Resolved } from './static-path.ts';

/** Bound on remembered paths; past it the memo starts over (a scan of random paths must not grow memory). */
const MAX_ENTRIES = 10_000;

/** Filled in by resolve(): until when every lookup of one request is still answered from memory (static-hot.ts). */
export interface LookupWindow {
  until: number;
}

interface Entry<T> {
  readonly until: number;
  readonly value: Promise<T>;
}

export class ResolveCache {
  readonly #windowMs: number;
  readonly #root: string;
  readonly #dotfiles: 'allow' | 'deny';
  #realRoot: Entry<string> | undefined;
  readonly #files = new Map<string, Entry<Resolved | undefined>>();

  constructor(root: string, dotfiles: 'allow' | 'deny', windowMs: number) {
    this.#root = root;
    this.#dotfiles = dotfiles;
    this.#windowMs = windowMs;
  }

  /** The real path of the root (a `current -> release-N` link is followed). */
  realRoot(): Promise<string> {
    const now = performance.now();
    if (this.#realRoot && this.#realRoot.until > now) return this.#realRoot.value;
    const value = realRootOf(this.#root);
    if (this.#windowMs > 0) this.#realRoot = this.#remember(value, now, () => (this.#realRoot = undefined));
    return value;
  }

  /**
   * resolveInside() of static-path.ts, remembered for the window (errors never
   * are). `window.until` is lowered to this answer's expiry (to now when
   * nothing is remembered).
   */
  resolve(candidate: string, window?: LookupWindow): Promise<Resolved | undefined> {
    const now = performance.now();
    let entry = this.#files.get(candidate);
    if (!entry || entry.until <= now) {
      const value = resolveInside(this.realRoot(), candidate, this.#dotfiles);
      if (this.#windowMs <= 0) {
        if (window) window.until = Math.min(window.until, now);
        return value;
      }
      if (this.#files.size >= MAX_ENTRIES) this.#files.clear();
      entry = this.#remember(value, now, () => this.#files.delete(candidate));
      this.#files.set(candidate, entry);
    }
    if (window && entry.until < window.until) window.until = entry.until;
    return entry.value;
  }

  clear(): void {
    this.#realRoot = undefined;
    this.#files.clear();
  }

  #remember<T>(value: Promise<T>, now: number, forget: () => void): Entry<T> {
    // A failed lookup (EACCES, EIO) is not remembered: the next request tries again.
    value.catch(forget);
    return { until: now + this.#windowMs, value };
  }
}
