/**
 * `rateLimit:` on a route: a token bucket per key (token-bucket.ts), refilled
 * at `requests` per `per` and holding at most `burst`. Over the limit the
 * request is answered `429 rate_limited` with Retry-After (gRPC:
 * RESOURCE_EXHAUSTED), or in `mode: shadow` let through and counted. The
 * IETF draft's RateLimit-Policy and RateLimit fields
 * (draft-ietf-httpapi-ratelimit-headers-10) are on every refusal, and on every
 * answer of the route with `headers: true`.
 *
 * With `workers: N` each worker process holds its own buckets, so each
 * enforces 1/N of the limit (the kernel spreads connections about evenly);
 * the headers then describe what this process enforces.
 */
import { createHash } from 'node:crypto';
import type { BlockList } from 'node:net';
import type { ClientRequest } from '../net/client.ts';
import type { ListenerName } from '../config/compile.ts';
import { rateLimitDecisionsTotal, type HotSeries } from '../observe/metrics.ts';
import { ProxyError } from '../core/errors.ts';
import { clientAddress } from '../net/trusted-proxies.ts';
import type { Policy, PolicyDecision, PolicyRequest } from './policy.ts';
import type { LimitIdentity } from './state.ts';
import type { BucketLimits, Take } from './token-bucket.ts';

export interface RateLimitSettings {
  readonly requests: number;
  /** The window `requests` are earned in (ms). */
  readonly per: number;
  /** Most requests at once after a quiet time; default `requests`. */
  readonly burst?: number;
  /** `route` (one bucket), `client-ip`, or `header:NAME`. */
  readonly key: string;
  readonly maxKeys: number;
  readonly mode: 'enforce' | 'shadow';
  readonly headers: boolean;
}

/** Where the limit applies. */
export interface RateLimitPlace {
  readonly listener: ListenerName;
  readonly route: string;
  /** The listener's trustedProxies: whose X-Forwarded-For names the client (key: client-ip). */
  readonly trustedProxies: BlockList | undefined;
  /** Processes serving the listener (`workers`); each enforces its share. */
  readonly workers: number;
}

/** Header values longer than this are keyed by their hash, so a key costs a bounded amount of memory. */
const MAX_KEY_LENGTH = 64;

type KeyOf = (req: ClientRequest) => string;

function keyFunction(key: string, place: RateLimitPlace): KeyOf {
  if (key === 'route') return () => '';
  if (key === 'client-ip') return (req) => clientAddress(place.trustedProxies, req.socket.remoteAddress, req.headers['x-forwarded-for']);
  const name = key.slice('header:'.length).toLowerCase();
  return (req) => {
    const raw = req.headers[name];
    // Requests without the header share one bucket: leaving them unlimited would let anyone skip the limit by omitting it.
    const value = raw === undefined ? '' : Array.isArray(raw) ? raw.join(', ') : raw;
    return value.length > MAX_KEY_LENGTH ? createHash('sha256').update(value).digest('base64') : value;
  };
}

/** A structured-field string (RFC 9651 3.3.3) naming the policy: printable ASCII, quotes and backslashes escaped. */
function policyName(route: string): string {
  return `"${route.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '\\$&')}"`;
}

export class RateLimitPolicy implements Policy, LimitIdentity {
  readonly stateKey: string;
  readonly listener: ListenerName;
  readonly route: string;
  readonly limits: BucketLimits;
  readonly #keyOf: KeyOf;
  readonly #shadow: boolean;
  readonly #headers: boolean;
  readonly #name: string;
  /** `RateLimit-Policy`: the quota `q` per window `w` (whole seconds) this process enforces. */
  readonly #policyField: string;
  readonly #allowed: HotSeries;
  readonly #limited: HotSeries;
  readonly #shadowLimited: HotSeries;

  constructor(settings: RateLimitSettings, place: RateLimitPlace) {
    const share = 1 / place.workers;
    const requests = settings.requests * share;
    this.limits = Object.freeze({
      perMs: requests / settings.per,
      capacity: Math.max(1, (settings.burst ?? settings.requests) * share),
      maxKeys: settings.maxKeys,
    });
    this.listener = place.listener;
    this.route = place.route;
    // What identifies the buckets across reloads: the limit, not how it is reported.
    this.stateKey = JSON.stringify([place.listener, place.route, settings.key, this.limits]);
    this.#keyOf = keyFunction(settings.key, place);
    this.#shadow = settings.mode === 'shadow';
    this.#headers = settings.headers;
    this.#name = policyName(place.route);
    const window = Math.max(1, Math.ceil(settings.per / 1000));
    this.#policyField = `${this.#name};q=${Math.max(1, Math.floor((requests * window * 1000) / settings.per))};w=${window}`;
    this.#allowed = rateLimitDecisionsTotal.series({ listener: place.listener, route: place.route, outcome: 'allowed' });
    this.#limited = rateLimitDecisionsTotal.series({ listener: place.listener, route: place.route, outcome: 'limited' });
    this.#shadowLimited = rateLimitDecisionsTotal.series({ listener: place.listener, route: place.route, outcome: 'shadow_limited' });
  }

  decide({ req, state, now }: PolicyRequest): PolicyDecision | undefined {
    const buckets = state.buckets(this);
    const key = this.#keyOf(req);
    const take = buckets.take(key, now);
    if (take.allowed || this.#shadow) {
      (take.allowed ? this.#allowed : this.#shadowLimited).inc();
      const headers = this.#headers ? this.#fields(take) : undefined;
      // A CONNECT is one request while it is a blind tunnel; one that carries HTTP gives its token back.
      const release = take.allowed && req.method === 'CONNECT' ? () => buckets.give(key) : undefined;
      return headers || release ? { headers, release } : undefined;
    }
    this.#limited.inc();
    const headers = this.#fields(take);
    headers['retry-after'] = String(Math.max(1, Math.ceil(take.nextMs / 1000)));
    return { refusal: new ProxyError('rate_limited'), headers };
  }

  /** RateLimit-Policy and RateLimit: what is left (`r`) and when the bucket is full again (`t`, seconds). */
  #fields(take: Take): Record<string, string> {
    return {
      'ratelimit-policy': this.#policyField,
      ratelimit: `${this.#name};r=${take.remaining};t=${Math.ceil(take.fullMs / 1000)}`,
    };
  }
}
