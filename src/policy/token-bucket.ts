/**
 * Token buckets, one per key, refilled lazily: a bucket holds a number of
 * tokens and the time it was last looked at, and each take first adds what
 * the elapsed time earned (no timer per bucket, as in Envoy's local rate
 * limit and NGINX's limit_req, whose leaky bucket is the same arithmetic).
 *
 * The keys live in a map bounded by `maxKeys`, evicted approximately least
 * recently used (CLOCK, as the static file cache does: a hit sets a flag
 * instead of moving the entry, which would rebuild the Map's hash table every
 * few requests). A flood of new keys can therefore evict quiet ones but never
 * grow memory; an evicted key comes back with a full bucket, as if it had
 * been idle long enough to refill, which is what eviction mostly removes.
 */

export interface BucketLimits {
  /** Tokens earned per millisecond. */
  readonly perMs: number;
  /** Most tokens a bucket holds: the burst. */
  readonly capacity: number;
  /** Most keys held at once. */
  readonly maxKeys: number;
}

/** The outcome of one take. */
export interface Take {
  readonly allowed: boolean;
  /** Whole tokens left after the take. */
  readonly remaining: number;
  /** Until the next token (ms); 0 when one is there. */
  readonly nextMs: number;
  /** Until the bucket is full again (ms). */
  readonly fullMs: number;
}

interface Bucket {
  tokens: number;
  at: number;
  /** Taken from since eviction last passed it (CLOCK's second chance). */
  used: boolean;
}

export class KeyedBuckets {
  readonly limits: BucketLimits;
  readonly #buckets = new Map<string, Bucket>();

  constructor(limits: BucketLimits) {
    this.limits = limits;
  }

  /** Keys held now. */
  get size(): number {
    return this.#buckets.size;
  }

  /** Takes one token from `key`'s bucket at time `now` (ms, monotonic) if it has one. */
  take(key: string, now: number): Take {
    const { perMs, capacity } = this.limits;
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: capacity, at: now, used: false };
      this.#admit(key, bucket);
    } else {
      bucket.used = true;
      // A clock that went backwards (it cannot with performance.now(), but a test may pass times) earns nothing.
      if (now > bucket.at) bucket.tokens = Math.min(capacity, bucket.tokens + (now - bucket.at) * perMs);
      bucket.at = now;
    }
    const allowed = bucket.tokens >= 1;
    if (allowed) bucket.tokens -= 1;
    return {
      allowed,
      remaining: Math.floor(bucket.tokens),
      nextMs: bucket.tokens >= 1 ? 0 : (1 - bucket.tokens) / perMs,
      fullMs: (capacity - bucket.tokens) / perMs,
    };
  }

  /** Gives back the token of a take that turned out not to count. */
  give(key: string): void {
    const bucket = this.#buckets.get(key);
    if (bucket) bucket.tokens = Math.min(this.limits.capacity, bucket.tokens + 1);
  }

  #admit(key: string, bucket: Bucket): void {
    const buckets = this.#buckets;
    // Each pass either evicts or clears one flag, so this ends within two rounds of the map.
    while (buckets.size >= this.limits.maxKeys) {
      const [oldest, entry] = buckets.entries().next().value!;
      buckets.delete(oldest);
      if (entry.used) {
        entry.used = false;
        buckets.set(oldest, entry);
      }
    }
    buckets.set(key, bucket);
  }
}
