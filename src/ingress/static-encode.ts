/**
 * On-the-fly compression of static files, for static routes with `compress`
 * (their own or their listener's), when no precompressed sibling serves the
 * request. The rules are the proxy's (policy/compress.ts): a GET without
 * Range, a type worth compressing, at least `minLength` bytes, a coding the
 * client accepts.
 *
 * A hot file (one the file cache keeps, static-cache.ts) is compressed once
 * per coding and the encoded copy is kept in the same cache, beside the file
 * and under the same stat, so it goes with the file's next change and counts
 * against the same `cache.maxBytes`. Concurrent first requests share one
 * compression. A larger file streams through an encoder on every request.
 * The encoded answer is a representation of its own: its ETag carries the
 * coding (static-negotiate.ts validatorsOf), it has no Accept-Ranges, and
 * like every answer of a compressible type it says `Vary: Accept-Encoding`.
 */
import type { BigIntStats } from 'node:fs';
import type { ClientRequest } from '../net/client.ts';
import type { Coding } from '../policy/accept-encoding.ts';
import type { Compression, Encoder } from '../policy/compression.ts';
import { compressionBytesTotal, compressionTotal } from '../observe/metrics.ts';
import type { CachedBody, FileCache } from './static-cache.ts';

/** The encoded copy of a cached file, as cached (a string for a small one) or just made. */
export interface EncodedCopy {
  /** The cache key the copy is kept under (the hot answer's `real`). */
  readonly key: string;
  readonly body: CachedBody;
  readonly kept: boolean;
}

export class StaticEncoding {
  readonly #compression: Compression;
  readonly #route: string;
  /** Compressions under way, so concurrent first requests for a file share one. */
  readonly #pending = new Map<string, Promise<Buffer>>();

  constructor(compression: Compression, route: string) {
    this.#compression = compression;
    this.#route = route;
  }

  /** Whether answers of this type depend on Accept-Encoding (Vary). */
  varies(type: string): boolean {
    return this.#compression.compressible(type);
  }

  /** The coding to compress this answer with, or undefined to send the file as it is. */
  choose(req: ClientRequest, type: string, size: number): Coding | undefined {
    if (req.method !== 'GET' || req.headers.range !== undefined) return undefined;
    if (size === 0 || size < this.#compression.minLength || !this.#compression.compressible(type)) return undefined;
    return this.#compression.choose(req.headers['accept-encoding']);
  }

  /** The encoded copy of a cached file (`identity` is its body), from the cache or made and kept now. */
  async copy(cache: FileCache, real: string, stat: BigIntStats, coding: Coding, identity: CachedBody): Promise<EncodedCopy> {
    const key = `${real}\u0000${coding}`;
    const known = cache.get(key, stat);
    if (known !== undefined) return { key, body: known, kept: true };
    // Keyed by the file's version too: a request for the next version must not take this one's copy.
    const pendingKey = `${key}\u0000${stat.ino}\u0000${stat.mtimeNs}\u0000${stat.ctimeNs}\u0000${stat.size}`;
    let encoding = this.#pending.get(pendingKey);
    if (!encoding) {
      const source = typeof identity === 'string' ? Buffer.from(identity, 'latin1') : identity;
      encoding = this.#compression.encodeWhole(coding, source);
      this.#pending.set(pendingKey, encoding);
      encoding.then(
        (encoded) => this.counted(coding, source.length, encoded.length),
        () => undefined,
      ).finally(() => this.#pending.delete(pendingKey));
    }
    const { kept, body } = cache.setDerived(key, stat, await encoding);
    return { key, body, kept };
  }

  /** An encoder for a file too large to cache (tell counted() its bytes once the stream ends). */
  encoder(coding: Coding): Encoder {
    return this.#compression.encoder(coding);
  }

  /** One compression done: counted with its bytes in and out. */
  counted(coding: Coding, bytesIn: number, bytesOut: number): void {
    compressionTotal.series({ route: this.#route, result: coding }).inc();
    compressionBytesTotal.series({ route: this.#route, algorithm: coding, direction: 'in' }).inc(bytesIn);
    compressionBytesTotal.series({ route: this.#route, algorithm: coding, direction: 'out' }).inc(bytesOut);
  }
}
