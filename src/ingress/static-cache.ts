/**
 * A bounded cache of small hot files (approximately LRU: CLOCK, see #entries),
 * keyed by real path. Freshness is checked on every hit against a stat taken
 * for that request (device, inode, size, mtime and ctime to the nanosecond),
 * so an edit in place, an atomic rename and a `cp -p` that keeps the mtime all
 * invalidate the entry, without watchers.
 *
 * One race remains that no stat can see: a rewrite of the same size within the
 * same tick of the file system's clock. So a file is only admitted once its
 * last change is older than `settleMs` (git's "racily clean" rule): any later
 * change then gets a different ctime, and the entry is dropped on the next hit.
 */
import type { BigIntStats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { asTextBody } from '../net/text-body.ts';

/** Long enough for file systems with one-second timestamps (ext3, HFS+, some network mounts). */
export const DEFAULT_SETTLE_MS = 2_000;

/**
 * A cached file's bytes: small files are kept as latin1 text (net/text-body.ts),
 * so a cached answer leaves with its head in one write; bigger ones as the Buffer.
 */
export type CachedBody = string | Buffer;

/** Bytes `start` to `end` (inclusive) of a body, the same kind of value. */
export function bytesOf(body: CachedBody, start: number, end: number): CachedBody {
  return typeof body === 'string' ? body.slice(start, end + 1) : body.subarray(start, end + 1);
}

interface Entry {
  body: CachedBody;
  /** Hit since the eviction scan last passed it (the "second chance" of CLOCK). */
  used: boolean;
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export interface FileCacheStats {
  entries: number;
  bytes: number;
  hits: number;
  misses: number;
}

export class FileCache {
  readonly #maxBytes: number;
  readonly #maxFileSize: number;
  readonly #settleMs: number;
  /**
   * Insertion order, swept from the front by eviction, CLOCK-style: an entry
   * hit since the sweep last passed it goes to the back instead of out. An
   * approximate LRU whose hit is one flag store: moving the entry to the end
   * on every hit (delete + set) made the Map drop and rebuild its hash table
   * every few requests, and V8 keeps each obsolete table linked to the next,
   * which raised the share of young objects promoted to old space under
   * load.
   */
  readonly #entries = new Map<string, Entry>();
  #bytes = 0;
  #hits = 0;
  #misses = 0;

  constructor(maxBytes: number, maxFileSize: number, settleMs = DEFAULT_SETTLE_MS) {
    this.#maxBytes = Math.max(0, maxBytes);
    this.#maxFileSize = Math.min(Math.max(0, maxFileSize), this.#maxBytes);
    this.#settleMs = settleMs;
  }

  /** Whether a file of this size would be read whole and kept (0 disables the cache). */
  fits(size: number): boolean {
    return this.#maxFileSize > 0 && size <= this.#maxFileSize;
  }

  /** The cached body when it still is the file `stat` describes; a stale entry is dropped. */
  get(path: string, stat: BigIntStats): CachedBody | undefined {
    const body = this.hit(path, stat);
    if (body === undefined) this.#misses++;
    return body;
  }

  /** get() for a first try whose miss is not counted (the full lookup that follows a miss counts it). */
  hit(path: string, stat: BigIntStats): CachedBody | undefined {
    const entry = this.#entries.get(path);
    if (!entry) return undefined;
    if (!sameFile(entry, stat)) {
      this.#entries.delete(path);
      this.#bytes -= entry.body.length;
      return undefined;
    }
    entry.used = true;
    this.#hits++;
    return entry.body;
  }

  /**
   * Keeps `body`, read from the file `before` described, when the file did not
   * change while it was read (`after`) and has settled. The body to send:
   * the kept one (a string for a small file), or `body` itself when not kept.
   */
  set(path: string, before: BigIntStats, after: BigIntStats, body: Buffer, now = Date.now()): { kept: boolean; body: CachedBody } {
    if (!sameVersion(before, after) || BigInt(body.length) !== after.size) return { kept: false, body };
    return this.#keep(path, after, body, now);
  }

  /**
   * Keeps bytes made from a file (its compressed copy, static-encode.ts) under
   * their own key, valid exactly as long as the file's `stat` is: they go
   * with the file's next change. Same admission and eviction as the file.
   */
  setDerived(key: string, stat: BigIntStats, body: Buffer, now = Date.now()): { kept: boolean; body: CachedBody } {
    return this.#keep(key, stat, body, now);
  }

  #keep(path: string, after: BigIntStats, body: Buffer, now: number): { kept: boolean; body: CachedBody } {
    const refused = { kept: false, body };
    if (!this.fits(body.length)) return refused;
    const changedMs = Number((after.ctimeNs > after.mtimeNs ? after.ctimeNs : after.mtimeNs) / 1_000_000n);
    if (now - changedMs < this.#settleMs) return refused;
    const old = this.#entries.get(path);
    if (old) {
      this.#entries.delete(path);
      this.#bytes -= old.body.length;
    }
    const kept = asTextBody(body);
    this.#entries.set(path, {
      body: kept,
      used: false,
      dev: after.dev,
      ino: after.ino,
      size: after.size,
      mtimeNs: after.mtimeNs,
      ctimeNs: after.ctimeNs,
    });
    this.#bytes += body.length;
    this.#evict();
    return { kept: this.#entries.has(path), body: kept };
  }

  /**
   * Drops entries from the front until the bytes fit, giving each entry hit
   * since the last sweep one more round. Ends: flags only clear, and the
   * newest entry (never hit yet) fits alone (fits() caps a file at maxBytes).
   */
  #evict(): void {
    while (this.#bytes > this.#maxBytes) {
      const [key, entry] = this.#entries.entries().next().value!;
      this.#entries.delete(key);
      if (entry.used) {
        entry.used = false;
        this.#entries.set(key, entry);
      } else {
        this.#bytes -= entry.body.length;
      }
    }
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }

  stats(): FileCacheStats {
    return { entries: this.#entries.size, bytes: this.#bytes, hits: this.#hits, misses: this.#misses };
  }
}

function sameFile(entry: Entry, stat: BigIntStats): boolean {
  return (
    entry.ino === stat.ino &&
    entry.dev === stat.dev &&
    entry.size === stat.size &&
    entry.mtimeNs === stat.mtimeNs &&
    entry.ctimeNs === stat.ctimeNs
  );
}

/** Same file, same content as far as a stat can tell. */
export function sameVersion(a: BigIntStats, b: BigIntStats): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

/** Exactly `size` bytes from the start, or undefined when the file is shorter now. */
export async function readExactly(handle: FileHandle, size: number): Promise<Buffer | undefined> {
  // Unpooled: a cached body must not pin a shared 8 KiB pool slab.
  const buffer = Buffer.allocUnsafeSlow(size);
  let offset = 0;
  while (offset < size) {
    const { bytesRead } = await handle.read(buffer, offset, size - offset, offset);
    if (bytesRead === 0) return undefined;
    offset += bytesRead;
  }
  return buffer;
}
