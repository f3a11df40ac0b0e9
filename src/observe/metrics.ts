/**
 * Every metric of SPEC.md, defined once per process on one registry. Metrics
 * live outside the config snapshot so a reload never resets a counter
 * (Caddy's metrics.go does the same).
 */
import { Counter, Gauge, Registry, collectDefaultMetrics, type CounterConfiguration, type LabelValues, type Metric } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'sidecar_' });

/** The key of a label set in a hot metric's series map (label values in order). */
function labelKey(labels: object): string {
  return Object.values(labels).join('\u0000');
}

/** One labelled series of a HotCounter. */
export interface HotSeries {
  inc(by?: number): void;
}

/**
 * A counter bumped on every request or chunk. prom-client's labelled child
 * hashes and validates its label set on each inc() and returns a new object;
 * here each series sums its increments in a plain number, and the sums go
 * to prom-client when the registry is read (the counter's collect hook), so
 * a scrape sees exactly what per-call inc() would have shown. The series are
 * kept for the process's life, as prom-client keeps its own.
 */
export class HotCounter<T extends string> {
  readonly counter: Counter<T>;
  readonly #series = new Map<string, { readonly labels: LabelValues<T>; pending: number }>();

  constructor(config: CounterConfiguration<T>) {
    this.counter = new Counter({ ...config, collect: () => this.flush() });
  }

  /** The series of these label values (same values, same series). */
  series(labels: LabelValues<T>): HotSeries {
    const key = labelKey(labels);
    let entry = this.#series.get(key);
    if (!entry) {
      entry = { labels, pending: 0 };
      this.#series.set(key, entry);
    }
    const target = entry;
    return {
      inc: (by = 1) => {
        target.pending += by;
      },
    };
  }

  /** Hands the pending sums to prom-client. */
  flush(): void {
    for (const entry of this.#series.values()) {
      if (entry.pending === 0) continue;
      this.counter.inc(entry.labels, entry.pending);
      entry.pending = 0;
    }
  }
}

/** One labelled series of a HotHistogram: bucket counts in a plain array. */
export class HistogramSeries<T extends string> {
  readonly labels: LabelValues<T>;
  readonly #upperBounds: readonly number[];
  /** Observations per bucket (not cumulative); the last slot is above every bound (+Inf). */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(labels: LabelValues<T>, upperBounds: readonly number[]) {
    this.labels = labels;
    this.#upperBounds = upperBounds;
    this.counts = new Array<number>(upperBounds.length + 1).fill(0);
  }

  observe(value: number): void {
    const bounds = this.#upperBounds;
    let bucket = 0;
    while (bucket < bounds.length && value > bounds[bucket]) bucket++;
    this.counts[bucket]++;
    this.sum += value;
    this.count++;
  }
}

/**
 * A histogram observed on every request. prom-client's Histogram validates and
 * hashes the label set on each observe() (about 1 us each under load); here a
 * series is looked up once and then only bumps numbers. The registry reads it
 * through get(), the one method prom-client's Registry asks of a metric, so
 * the text format and the cluster aggregation (sum) are prom-client's own; the
 * output matches a prom-client Histogram's line for line (unit test).
 */
export class HotHistogram<T extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #upperBounds: readonly number[];
  readonly #series = new Map<string, HistogramSeries<T>>();

  constructor(config: { name: string; help: string; labelNames: readonly T[]; buckets: readonly number[]; registers: Registry[] }) {
    this.name = config.name;
    this.help = config.help;
    this.#upperBounds = [...config.buckets].sort((a, b) => a - b);
    for (const target of config.registers) target.registerMetric(this as unknown as Metric);
  }

  /** The series of these label values (same values, same series). */
  series(labels: LabelValues<T>): HistogramSeries<T> {
    const key = labelKey(labels);
    let series = this.#series.get(key);
    if (!series) {
      series = new HistogramSeries(labels, this.#upperBounds);
      this.#series.set(key, series);
    }
    return series;
  }

  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: HistogramValue[] }> {
    const values: HistogramValue[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const series of this.#series.values()) {
      let cumulative = 0;
      this.#upperBounds.forEach((bound, index) => {
        cumulative += series.counts[index];
        values.push({ labels: { le: bound, ...series.labels }, value: cumulative, metricName: bucketName });
      });
      values.push({ labels: { le: '+Inf', ...series.labels }, value: series.count, metricName: bucketName });
      values.push({ labels: { ...series.labels }, value: series.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...series.labels }, value: series.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.#series.clear();
  }
}

interface HistogramValue {
  labels: Record<string, string | number | undefined>;
  value: number;
  metricName: string;
}

export const requestsTotal = new HotCounter({
  name: 'sidecar_requests_total',
  help: 'Requests answered, by listener, route, upstream, method, status code and the client\'s HTTP version (protocol: 1.0, 1.1, 2; "" when the request was never parsed).',
  labelNames: ['listener', 'route', 'upstream', 'method', 'code', 'protocol'] as const,
  registers: [registry],
});

export const requestDuration = new HotHistogram({
  name: 'sidecar_request_duration_seconds',
  help: 'Time from the request head to the end of the response.',
  labelNames: ['listener', 'route', 'upstream'] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});

export const badRequestsTotal = new Counter({
  name: 'sidecar_bad_requests_total',
  help: 'Requests refused as malformed, too large or too slow (Node\'s parser included), by listener and error code.',
  labelNames: ['listener', 'code'] as const,
  registers: [registry],
});

export const upstreamRetriesTotal = new Counter({
  name: 'sidecar_upstream_retries_total',
  help: 'Retries sent upstream, by the condition that caused them.',
  labelNames: ['upstream', 'reason'] as const,
  registers: [registry],
});

export const retryStopsTotal = new Counter({
  name: 'sidecar_upstream_retry_stops_total',
  help: 'Requests whose last try failed, by why no further retry was made.',
  labelNames: ['upstream', 'reason'] as const,
  registers: [registry],
});

export const circuitState = new Gauge({
  name: 'sidecar_circuit_state',
  help: '1 for the current state (closed, open, half_open) of each upstream breaker.',
  labelNames: ['upstream', 'state'] as const,
  // With workers, each has its own breaker: a state is 1 when any worker's breaker is in it.
  aggregator: 'max',
  registers: [registry],
});

export const upstreamEndpoints = new Gauge({
  name: 'sidecar_upstream_endpoints',
  help: 'Endpoints of each upstream: its fixed endpoints, or those its DNS discovery found last.',
  labelNames: ['upstream'] as const,
  // With workers, every process holds the same set (the primary resolves, workers follow).
  aggregator: 'max',
  registers: [registry],
});

export const discoveryErrorsTotal = new Counter({
  name: 'sidecar_discovery_errors_total',
  help: 'DNS resolutions of an upstream that failed (the last endpoints were kept).',
  labelNames: ['upstream'] as const,
  registers: [registry],
});

/** Requests in flight, counted in plain numbers by exchange.ts and read at scrape time. */
export const requestsInFlight = { ingress: 0, egress: 0 };

export const activeRequests = new Gauge({
  name: 'sidecar_active_requests',
  help: 'Requests in flight, by listener.',
  labelNames: ['listener'] as const,
  registers: [registry],
  collect() {
    this.set({ listener: 'ingress' }, requestsInFlight.ingress);
    this.set({ listener: 'egress' }, requestsInFlight.egress);
  },
});

export const activeConnections = new Gauge({
  name: 'sidecar_active_connections',
  help: 'Open client connections (CONNECT tunnels included), by listener.',
  labelNames: ['listener'] as const,
  registers: [registry],
});

export const staticResponsesTotal = new HotCounter({
  name: 'sidecar_static_responses_total',
  help: 'Static file responses, by route and status code.',
  labelNames: ['route', 'code'] as const,
  registers: [registry],
});

export const staticBytesTotal = new HotCounter({
  name: 'sidecar_static_bytes_sent_total',
  help: 'Body bytes sent by static routes.',
  labelNames: ['route'] as const,
  registers: [registry],
});

export const tunnelBytesTotal = new HotCounter({
  name: 'sidecar_tunnel_bytes_total',
  help: 'Bytes carried by CONNECT tunnels, by direction (up = client to destination).',
  labelNames: ['direction'] as const,
  registers: [registry],
});

export const configReloadsTotal = new Counter({
  name: 'sidecar_config_reloads_total',
  help: 'Config reloads, by result (success, failure).',
  labelNames: ['result'] as const,
  // With workers, the primary and every worker count the same reload once each.
  aggregator: 'max',
  registers: [registry],
});

export const configLastReloadSuccess = new Gauge({
  name: 'sidecar_config_last_reload_success_timestamp_seconds',
  help: 'Unix time of the last config load or reload that took effect.',
  aggregator: 'max',
  registers: [registry],
});

export const appUp = new Gauge({
  name: 'sidecar_app_up',
  help: '1 while the supervised app runs and is ready.',
  registers: [registry],
});

export const appRestartsTotal = new Counter({
  name: 'sidecar_app_restarts_total',
  help: 'Restarts of the supervised app.',
  registers: [registry],
});

export const appCpuSecondsTotal = new Counter({
  name: 'sidecar_app_cpu_seconds_total',
  help: 'CPU time of the supervised app (user + system), read from /proc.',
  registers: [registry],
});

export const appResidentMemory = new Gauge({
  name: 'sidecar_app_resident_memory_bytes',
  help: 'Resident memory of the supervised app, read from /proc.',
  registers: [registry],
});

/** Certificate sets reloaded after their files changed, or refused (the old set then stays). */
export const tlsReloadsTotal = new Counter({
  name: 'sidecar_tls_reloads_total',
  help: 'Certificate files reloaded after a change, by listener (or upstream, for client certificates) and result (success, failure).',
  labelNames: ['listener', 'upstream', 'result'] as const,
  // With workers, each process watches and reloads the same files: one change counts once.
  aggregator: 'max',
  registers: [registry],
});

export const tlsHandshakeErrorsTotal = new Counter({
  name: 'sidecar_tls_handshake_errors_total',
  help: 'TLS handshakes that failed (client certificates refused included), by listener and reason.',
  labelNames: ['listener', 'reason'] as const,
  registers: [registry],
});

/** One expiry series: a served certificate (listener, serverName) or an upstream client certificate (upstream). */
export interface ExpirySample {
  readonly labels: { readonly listener: string; readonly upstream: string; readonly serverName: string };
  readonly notAfter: number;
}

/** Where the expiry gauge reads the certificates in use at scrape time (src/tls/ adds and removes its sets). */
export const tlsExpirySources = new Set<() => Iterable<ExpirySample>>();

export const tlsCertificateExpiry = new Gauge({
  name: 'sidecar_tls_certificate_expiry_timestamp_seconds',
  help: 'Unix time when a certificate in use expires: served by a listener (serverName "" is the default certificate) or presented to an upstream.',
  labelNames: ['listener', 'upstream', 'serverName'] as const,
  // With workers, the soonest any process would serve.
  aggregator: 'min',
  registers: [registry],
  collect() {
    // Read whole at each scrape: a rotated or removed certificate leaves no stale series behind.
    this.reset();
    for (const source of tlsExpirySources) for (const { labels, notAfter } of source()) this.set(labels, notAfter / 1000);
  },
});

export const compressionTotal = new HotCounter({
  name: 'sidecar_compression_total',
  help: 'Responses of routes with compress, by route and result: the coding used (br, gzip, zstd) or why none was (not_accepted, too_small, type, encoded, no_transform, status, head, range, grpc).',
  labelNames: ['route', 'result'] as const,
  registers: [registry],
});

export const compressionBytesTotal = new HotCounter({
  name: 'sidecar_compression_bytes_total',
  help: 'Body bytes through the compressors, by route, coding and direction (in = as the upstream or file gave them, out = as sent).',
  labelNames: ['route', 'algorithm', 'direction'] as const,
  registers: [registry],
});

export const rateLimitDecisionsTotal = new HotCounter({
  name: 'sidecar_rate_limit_decisions_total',
  help: 'Rate limit decisions, by listener, route and outcome (allowed, limited, shadow_limited: over the limit but let through by mode: shadow).',
  labelNames: ['listener', 'route', 'outcome'] as const,
  registers: [registry],
});

/** The key stores of the rate limits alive in this process, read at scrape time (policy/state.ts adds and removes them). */
export const rateLimitKeyStores = new Set<{ readonly listener: string; readonly route: string; readonly size: number }>();

export const rateLimitKeys = new Gauge({
  name: 'sidecar_rate_limit_keys',
  help: 'Keys (clients, header values) a rate limit holds buckets for, by listener and route; at most its maxKeys.',
  labelNames: ['listener', 'route'] as const,
  registers: [registry],
  collect() {
    this.reset();
    for (const store of rateLimitKeyStores) this.inc({ listener: store.listener, route: store.route }, store.size);
  },
});

const tracingDroppedTotal = new HotCounter({
  name: 'sidecar_tracing_spans_dropped_total',
  help: 'Spans not delivered: queue_full (the export queue was full) or export_failed (the collector failed, refused or timed out).',
  labelNames: ['reason'] as const,
  registers: [registry],
});

// Both series exist from the start at 0, so a scrape shows that nothing was dropped yet.
tracingDroppedTotal.counter.inc({ reason: 'queue_full' }, 0);
tracingDroppedTotal.counter.inc({ reason: 'export_failed' }, 0);

/** The two reasons a span is dropped, each series looked up once. */
export const tracingDropped = {
  queueFull: tracingDroppedTotal.series({ reason: 'queue_full' }),
  exportFailed: tracingDroppedTotal.series({ reason: 'export_failed' }),
};

export const tracingExported = new Counter({
  name: 'sidecar_tracing_spans_exported_total',
  help: 'Spans the collector accepted.',
  registers: [registry],
});

/** HTTP/2 connections the sidecar ended with GOAWAY because the client abused them (src/h2/guard.ts). */
export const h2GoawaysTotal = new Counter({
  name: 'sidecar_h2_goaways_total',
  help: 'HTTP/2 client connections ended with GOAWAY for abuse, by listener and reason (rapid_reset, settings_flood, ping_flood, preface_timeout; protocol_error: ended by nghttp2, whose own rapid-reset limit included).',
  labelNames: ['listener', 'reason'] as const,
  registers: [registry],
});

/** gRPC answers by their grpc-status (the HTTP status of a gRPC answer is 200 whatever happened). */
export const grpcResponsesTotal = new HotCounter({
  name: 'sidecar_grpc_responses_total',
  help: 'gRPC calls answered, by listener, route, upstream and grpc-status (the upstream\'s, or the sidecar\'s own answer\'s).',
  labelNames: ['listener', 'route', 'upstream', 'grpc_status'] as const,
  registers: [registry],
});
