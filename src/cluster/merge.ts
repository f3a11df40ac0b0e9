/**
 * One answer from the answers of several workers. Each worker keeps its own
 * breaker and ejection state (health verdicts come from the primary): in
 * /upstreams a breaker is as open as its most open copy, an endpoint is
 * healthy only when every worker finds it so, ejected when any worker ejected
 * it, in-flight requests and failed tries add up, the latest failure is the
 * last error; in /metrics each upstream's
 * `sidecar_circuit_state` follows the same rule, so it shows one state.
 */
import type { registry } from '../observe/metrics.ts';

/** One process's metrics, as prom-client's getMetricsAsJSON() gives them. */
export type MetricsJson = Awaited<ReturnType<typeof registry.getMetricsAsJSON>>;

interface EndpointView {
  url: string;
  healthy: boolean;
  ejected: boolean;
  inFlight: number;
  failures?: number;
  lastError?: string | null;
  lastErrorAt?: string | null;
  [key: string]: unknown;
}

interface UpstreamView {
  breaker: string;
  endpoints: EndpointView[];
  [key: string]: unknown;
}

/** "none": no breaker configured (every worker agrees, unless a reload is half way through). */
const BREAKER_RANK: Record<string, number> = { none: -1, closed: 0, half_open: 1, open: 2 };
const CIRCUIT_STATE = 'sidecar_circuit_state';
const CIRCUIT_STATES = ['closed', 'open', 'half_open'] as const;

export function mergeUpstreamViews(views: readonly unknown[]): { upstreams: Record<string, UpstreamView>; workers: number } {
  const upstreams: Record<string, UpstreamView> = {};
  let workers = 0;
  for (const view of views) {
    const named = (view as { upstreams?: Record<string, UpstreamView> } | undefined)?.upstreams;
    if (!named) continue;
    workers++;
    for (const [name, upstream] of Object.entries(named)) {
      const merged = upstreams[name];
      if (!merged) {
        upstreams[name] = { ...upstream, endpoints: upstream.endpoints.map((endpoint) => ({ ...endpoint })) };
        continue;
      }
      if ((BREAKER_RANK[upstream.breaker] ?? 0) > (BREAKER_RANK[merged.breaker] ?? 0)) merged.breaker = upstream.breaker;
      upstream.endpoints.forEach((endpoint, index) => {
        // By position first: two endpoints whose URLs came from ${VAR} may both be shown as http://[redacted].
        const same = merged.endpoints[index]?.url === endpoint.url ? merged.endpoints[index] : merged.endpoints.find((candidate) => candidate.url === endpoint.url);
        if (!same) {
          merged.endpoints.push({ ...endpoint });
          return;
        }
        same.healthy &&= endpoint.healthy;
        same.ejected ||= endpoint.ejected;
        same.inFlight += endpoint.inFlight;
        if (typeof endpoint.failures === 'number') same.failures = (same.failures ?? 0) + endpoint.failures;
        // The latest failure any worker saw (ISO times compare as text).
        if (endpoint.lastErrorAt && (!same.lastErrorAt || endpoint.lastErrorAt > same.lastErrorAt)) {
          same.lastErrorAt = endpoint.lastErrorAt;
          same.lastError = endpoint.lastError;
        }
      });
    }
  }
  return { upstreams, workers };
}

/**
 * The workers' GET /certs answers as one: each worker loads the same files,
 * so a certificate is listed once; one that only some workers have (a
 * rotation under way) is listed beside the one the others still serve.
 */
export function mergeCertificateViews(views: readonly unknown[]): { certificates: unknown[] } {
  const seen = new Map<string, unknown>();
  for (const view of views) {
    const certificates = (view as { certificates?: unknown[] } | undefined)?.certificates;
    for (const certificate of certificates ?? []) seen.set(JSON.stringify(certificate), certificate);
  }
  return { certificates: [...seen.values()] };
}

/**
 * The processes' metrics with `sidecar_circuit_state` made one: per upstream
 * the most open state any process reports is 1 and the others 0, kept in the
 * first process's copy only. Aggregated as they come (max per state), one
 * worker's closed=1 and another's open=1 would show both states at once.
 */
export function oneCircuitState(processes: readonly MetricsJson[]): MetricsJson[] {
  const current = new Map<string, string>();
  let template: MetricsJson[number] | undefined;
  for (const metrics of processes) {
    const circuit = metrics.find((metric) => metric.name === CIRCUIT_STATE);
    if (!circuit) continue;
    template ??= circuit;
    for (const { value, labels } of circuit.values) {
      if (value !== 1) continue;
      const upstream = String(labels.upstream);
      const state = String(labels.state);
      if ((BREAKER_RANK[state] ?? -1) > (BREAKER_RANK[current.get(upstream) ?? 'none'] ?? -1)) current.set(upstream, state);
    }
  }
  if (!template) return [...processes];
  const values = [...current].flatMap(([upstream, state]) =>
    CIRCUIT_STATES.map((each) => ({ value: each === state ? 1 : 0, labels: { upstream, state: each } })),
  );
  const merged = { ...template, values } as MetricsJson[number];
  return processes.map((metrics, index) => {
    const others = metrics.filter((metric) => metric.name !== CIRCUIT_STATE);
    return index === 0 ? [...others, merged] : others;
  });
}
