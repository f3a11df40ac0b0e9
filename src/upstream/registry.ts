/**
 * Per-upstream and per-endpoint state that outlives a config snapshot: the
 * undici pools (keep-alive connections), the balancer's cursor and, as they
 * come, breaker / ejection / health state. Keyed by upstream name and endpoint
 * URL, so a reload that keeps an upstream keeps its connections and state
 * (Caddy's hosts.go keeps upstream health in a global pool for this reason).
 */
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';
import type { UpstreamConfig } from '../config/schema.ts';
import { log } from '../observe/log.ts';

export class EndpointState {
  readonly url: string;
  /** scheme://host:port, as undici wants it. */
  readonly origin: string;
  /** host:port, for logs and Host headers. */
  readonly authority: string;
  readonly pool: Pool;
  readonly poolKey: string;
  inFlight = 0;

  constructor(url: string, pool: Pool, poolKey: string) {
    const parsed = new URL(url);
    this.url = url;
    this.origin = parsed.origin;
    this.authority = parsed.host;
    this.pool = pool;
    this.poolKey = poolKey;
  }
}

export class UpstreamState {
  readonly name: string;
  config: UpstreamConfig;
  endpoints: EndpointState[];
  /** Round-robin cursor; survives reloads with the upstream. */
  cursor = 0;

  constructor(name: string, config: UpstreamConfig, endpoints: EndpointState[]) {
    this.name = name;
    this.config = config;
    this.endpoints = endpoints;
  }

  /** Round-robin over the endpoints (the `balance` policies plug in here). */
  pick(): EndpointState {
    const endpoint = this.endpoints[this.cursor % this.endpoints.length];
    this.cursor = (this.cursor + 1) % this.endpoints.length;
    return endpoint;
  }
}

/** Options of the pool of one endpoint; a change of any of them means a new pool. */
function poolOptions(config: UpstreamConfig, url: string): { key: string; options: Pool.Options } {
  const tls = config.tls;
  const https = url.startsWith('https:');
  const connect = {
    timeout: config.connectTimeout,
    ...(https && tls?.serverName ? { servername: tls.serverName } : {}),
    ...(https && tls?.ca ? { ca: readFileSync(tls.ca) } : {}),
    ...(https && tls?.insecureSkipVerify ? { rejectUnauthorized: false } : {}),
  };
  const options: Pool.Options = {
    connections: config.connections,
    // Below the endpoint's own keep-alive timeout, so we never reuse a socket it is closing.
    keepAliveTimeout: config.idleTimeout,
    keepAliveMaxTimeout: config.idleTimeout,
    keepAliveTimeoutThreshold: 1_000,
    connect,
    // Per-request timeouts are set by the route on each dispatch.
    headersTimeout: 0,
    bodyTimeout: 0,
  };
  const key = JSON.stringify([config.connections, config.idleTimeout, config.connectTimeout, https ? tls ?? null : null]);
  return { key, options };
}

export class UpstreamRegistry {
  readonly #upstreams = new Map<string, UpstreamState>();

  get(name: string): UpstreamState | undefined {
    return this.#upstreams.get(name);
  }

  all(): IterableIterator<UpstreamState> {
    return this.#upstreams.values();
  }

  /**
   * Brings the registry in line with a config: new upstreams and endpoints get
   * pools, kept ones keep theirs (and their state), removed ones drain and close.
   * Throws only when a TLS file cannot be read, before anything changed.
   */
  reconcile(upstreams: Readonly<Record<string, UpstreamConfig>>): void {
    const planned = new Map<string, { config: UpstreamConfig; endpoints: Array<{ url: string; key: string; options: Pool.Options }> }>();
    for (const [name, config] of Object.entries(upstreams)) {
      planned.set(name, { config, endpoints: config.endpoints.map((url) => ({ url, ...poolOptions(config, url) })) });
    }

    const retired: EndpointState[] = [];
    for (const [name, plan] of planned) {
      const existing = this.#upstreams.get(name);
      const previous = new Map(existing?.endpoints.map((endpoint) => [endpoint.url, endpoint]));
      const endpoints = plan.endpoints.map(({ url, key, options }) => {
        const kept = previous.get(url);
        if (kept && kept.poolKey === key) {
          previous.delete(url);
          return kept;
        }
        return new EndpointState(url, new Pool(new URL(url).origin, options), key);
      });
      retired.push(...previous.values());
      if (existing) {
        existing.config = plan.config;
        existing.endpoints = endpoints;
      } else {
        this.#upstreams.set(name, new UpstreamState(name, plan.config, endpoints));
      }
    }
    for (const [name, state] of this.#upstreams) {
      if (planned.has(name)) continue;
      this.#upstreams.delete(name);
      retired.push(...state.endpoints);
    }
    for (const endpoint of retired) drain(endpoint);
  }

  /** Closes every pool, letting in-flight requests finish. */
  async close(): Promise<void> {
    const closing = [...this.#upstreams.values()].flatMap((state) => state.endpoints.map((endpoint) => endpoint.pool.close()));
    this.#upstreams.clear();
    await Promise.allSettled(closing);
  }

  /** Destroys every pool at once (after the shutdown deadline). */
  async destroy(): Promise<void> {
    const destroying = [...this.#upstreams.values()].flatMap((state) => state.endpoints.map((endpoint) => endpoint.pool.destroy()));
    this.#upstreams.clear();
    await Promise.allSettled(destroying);
  }
}

/** A removed endpoint: in-flight requests finish on it, then its pool closes. */
function drain(endpoint: EndpointState): void {
  endpoint.pool.close().catch((err: unknown) => log.warn({ err, endpoint: endpoint.url }, 'closing a retired upstream pool failed'));
}
