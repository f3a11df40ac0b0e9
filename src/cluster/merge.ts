/**
 * One /upstreams answer from the views of several workers (each keeps its own
 * breaker, ejection and health state): a breaker is as open as its most open
 * copy, an endpoint is healthy only when every worker finds it so, ejected
 * when any worker ejected it, and in-flight requests add up.
 */

interface EndpointView {
  url: string;
  healthy: boolean;
  ejected: boolean;
  inFlight: number;
  [key: string]: unknown;
}

interface UpstreamView {
  breaker: string;
  endpoints: EndpointView[];
  [key: string]: unknown;
}

/** "none": no breaker configured (every worker agrees, unless a reload is half way through). */
const BREAKER_RANK: Record<string, number> = { none: -1, closed: 0, half_open: 1, open: 2 };

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
      });
    }
  }
  return { upstreams, workers };
}

