/**
 * Policy state that must outlive a config snapshot: the token buckets of each
 * rate limit, kept by route and limit (Caddy keeps upstream health outside
 * its config for the same reason). A reload that leaves a route's limit as it
 * was finds the same buckets, so nobody gets a fresh burst from an unrelated
 * config change; a changed or removed limit starts over. One per sidecar
 * process (the Sidecar owns it, like the upstream registry).
 */
import type { Snapshot } from '../config/compile.ts';
import { rateLimitKeyStores } from '../observe/metrics.ts';
import { KeyedBuckets, type BucketLimits } from './token-bucket.ts';

/** What names one rate limit's buckets, and labels its key count. */
export interface LimitIdentity {
  /** Listener, route and the limit itself (stateKey of rate-limit.ts). */
  readonly stateKey: string;
  readonly listener: string;
  readonly route: string;
  readonly limits: BucketLimits;
}

/** A rate limit's buckets, as the key-count gauge reads them. */
class LimitBuckets extends KeyedBuckets {
  readonly listener: string;
  readonly route: string;

  constructor(identity: LimitIdentity) {
    super(identity.limits);
    this.listener = identity.listener;
    this.route = identity.route;
  }
}

export class PolicyState {
  readonly #buckets = new Map<string, LimitBuckets>();

  /** The buckets of a rate limit, made on first use. */
  buckets(limit: LimitIdentity): KeyedBuckets {
    let buckets = this.#buckets.get(limit.stateKey);
    if (buckets === undefined) {
      buckets = new LimitBuckets(limit);
      this.#buckets.set(limit.stateKey, buckets);
      rateLimitKeyStores.add(buckets);
    }
    return buckets;
  }

  /** After a swap: drops the buckets of limits `next` no longer has. */
  retain(next: Snapshot): void {
    const live = new Set<string>();
    for (const listener of [next.ingress, next.egress]) {
      for (const route of listener?.routes ?? []) for (const key of route.policies?.stateKeys ?? []) live.add(key);
    }
    for (const [key, buckets] of this.#buckets) {
      if (live.has(key)) continue;
      this.#buckets.delete(key);
      rateLimitKeyStores.delete(buckets);
    }
  }

  close(): void {
    for (const buckets of this.#buckets.values()) rateLimitKeyStores.delete(buckets);
    this.#buckets.clear();
  }
}
