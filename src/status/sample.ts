/**
 * One reading of the request counters, taken from the same prom-client
 * registry /metrics reads (with workers, the primary's merge of every
 * process's), and what two readings say about the time between them: rates
 * and latency quantiles, as Prometheus's rate() and histogram_quantile()
 * would compute them from two scrapes.
 */
import type { MetricsJson } from '../cluster/merge.ts';

/** Cumulative counts of one listener or route. */
export interface Counts {
  requests: number;
  s2xx: number;
  s4xx: number;
  s5xx: number;
  /** `sidecar_request_duration_seconds_bucket`: requests at or below each bound of Sample.bounds, +Inf last (cumulative, as Prometheus). */
  buckets: number[];
}

/** One reading of the counters, at `at` (ms since the epoch). */
export interface Sample {
  readonly at: number;
  /** Upper bounds (seconds) of the duration histogram's finite buckets, ascending. */
  readonly bounds: readonly number[];
  /** By listener name. */
  readonly listeners: ReadonlyMap<string, Counts>;
  /** By `listener route` (route "" = no route matched). */
  readonly routes: ReadonlyMap<string, Counts>;
  /** Requests in flight by listener (a gauge, not a count). */
  readonly inFlight: ReadonlyMap<string, number>;
  /** Retries by upstream label, all reasons together. */
  readonly retries: ReadonlyMap<string, number>;
  /** Rate limit decisions over the limit by `listener route`: refused (429) and let through by `mode: shadow`. */
  readonly rateLimited: ReadonlyMap<string, { limited: number; shadow: number }>;
  /** CPU seconds and resident bytes of the sidecar's processes (summed over workers) and of the supervised app. */
  readonly cpuSeconds: number;
  readonly rssBytes: number;
  readonly appCpuSeconds: number;
  readonly appRssBytes: number;
  readonly appUp: number;
}

/** Rates over an interval, per second, and latency quantiles in ms (undefined without requests). */
export interface Rates {
  requests: number;
  s2xx: number;
  s4xx: number;
  s5xx: number;
  p50Ms: number | undefined;
  p99Ms: number | undefined;
}

const DURATION_BUCKET = 'sidecar_request_duration_seconds_bucket';

export function routeKey(listener: string, route: string): string {
  return `${listener} ${route}`;
}

function emptyCounts(buckets: number): Counts {
  return { requests: 0, s2xx: 0, s4xx: 0, s5xx: 0, buckets: new Array<number>(buckets).fill(0) };
}

/** Reads a Sample from prom-client's JSON form of the registry. */
export function readSample(metrics: MetricsJson, at: number = Date.now()): Sample {
  const byName = new Map(metrics.map((metric) => [metric.name, metric.values] as const));
  const value = (name: string) => (byName.get(name) ?? []).reduce((sum, entry) => sum + entry.value, 0);

  const durations = (byName.get('sidecar_request_duration_seconds') ?? []).filter(
    (entry) => (entry as { metricName?: string }).metricName === DURATION_BUCKET,
  );
  const bounds = [...new Set(durations.map((entry) => Number(entry.labels.le)).filter(Number.isFinite))].sort((a, b) => a - b);
  const slot = new Map(bounds.map((bound, index) => [bound, index]));
  const listeners = new Map<string, Counts>();
  const routes = new Map<string, Counts>();
  const countsOf = (listener: string, route: string): Counts[] => {
    let own = listeners.get(listener);
    if (!own) listeners.set(listener, (own = emptyCounts(bounds.length + 1)));
    const key = routeKey(listener, route);
    let forRoute = routes.get(key);
    if (!forRoute) routes.set(key, (forRoute = emptyCounts(bounds.length + 1)));
    return [own, forRoute];
  };

  for (const { labels, value: count } of byName.get('sidecar_requests_total') ?? []) {
    const code = Number(labels.code);
    for (const counts of countsOf(String(labels.listener), String(labels.route ?? ''))) {
      counts.requests += count;
      if (code >= 200 && code < 300) counts.s2xx += count;
      else if (code >= 400 && code < 500) counts.s4xx += count;
      else if (code >= 500) counts.s5xx += count;
    }
  }
  for (const { labels, value: count } of durations) {
    const index = labels.le === '+Inf' ? bounds.length : slot.get(Number(labels.le));
    if (index === undefined) continue;
    for (const counts of countsOf(String(labels.listener), String(labels.route ?? ''))) counts.buckets[index] += count;
  }

  const inFlight = new Map<string, number>();
  for (const { labels, value: count } of byName.get('sidecar_active_requests') ?? []) inFlight.set(String(labels.listener), count);
  const retries = new Map<string, number>();
  for (const { labels, value: count } of byName.get('sidecar_upstream_retries_total') ?? []) {
    const upstream = String(labels.upstream);
    retries.set(upstream, (retries.get(upstream) ?? 0) + count);
  }
  const rateLimited = new Map<string, { limited: number; shadow: number }>();
  for (const { labels, value: count } of byName.get('sidecar_rate_limit_decisions_total') ?? []) {
    if (labels.outcome !== 'limited' && labels.outcome !== 'shadow_limited') continue;
    const key = routeKey(String(labels.listener), String(labels.route ?? ''));
    let counts = rateLimited.get(key);
    if (!counts) rateLimited.set(key, (counts = { limited: 0, shadow: 0 }));
    if (labels.outcome === 'limited') counts.limited += count;
    else counts.shadow += count;
  }
  return {
    at,
    bounds,
    listeners,
    routes,
    inFlight,
    retries,
    rateLimited,
    cpuSeconds: value('sidecar_process_cpu_seconds_total'),
    rssBytes: value('sidecar_process_resident_memory_bytes'),
    appCpuSeconds: value('sidecar_app_cpu_seconds_total'),
    appRssBytes: value('sidecar_app_resident_memory_bytes'),
    appUp: value('sidecar_app_up'),
  };
}

/**
 * Rates between two cumulative readings of one series. A counter that went
 * down (a worker died and took its counts along) counts as no traffic.
 */
export function ratesBetween(older: Counts | undefined, newer: Counts | undefined, seconds: number, bounds: readonly number[]): Rates {
  const before = older ?? emptyCounts(bounds.length + 1);
  const after = newer ?? emptyCounts(bounds.length + 1);
  const per = (a: number, b: number) => (seconds > 0 ? Math.max(0, b - a) / seconds : 0);
  const deltas = after.buckets.map((count, index) => Math.max(0, count - (before.buckets[index] ?? 0)));
  const perBucket = deltas.map((count, index) => Math.max(0, count - (index === 0 ? 0 : deltas[index - 1])));
  return {
    requests: per(before.requests, after.requests),
    s2xx: per(before.s2xx, after.s2xx),
    s4xx: per(before.s4xx, after.s4xx),
    s5xx: per(before.s5xx, after.s5xx),
    p50Ms: quantileMs(perBucket, bounds, 0.5),
    p99Ms: quantileMs(perBucket, bounds, 0.99),
  };
}

/**
 * The q-quantile of a histogram's per-bucket counts (not cumulative), in ms,
 * interpolated linearly inside its bucket as histogram_quantile() does; a
 * quantile in the +Inf bucket is the highest finite bound.
 */
export function quantileMs(perBucket: readonly number[], bounds: readonly number[], q: number): number | undefined {
  const total = perBucket.reduce((sum, count) => sum + count, 0);
  if (total === 0) return undefined;
  const rank = q * total;
  let below = 0;
  for (let index = 0; index < perBucket.length; index++) {
    const count = perBucket[index];
    if (below + count >= rank && count > 0) {
      if (index >= bounds.length) return bounds[bounds.length - 1] * 1000;
      const lower = index === 0 ? 0 : bounds[index - 1];
      const upper = bounds[index];
      return (lower + (upper - lower) * ((rank - below) / count)) * 1000;
    }
    below += count;
  }
  return bounds.length > 0 ? bounds[bounds.length - 1] * 1000 : undefined;
}
