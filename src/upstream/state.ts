/**
 * The state of one upstream and of each of its endpoints: the undici pool
 * (keep-alive connections) and how it connects, the balancer's cursor, the
 * retry budget, the circuit breaker, outlier ejection and active health.
 * The registry (registry.ts) keeps these across reloads.
 */
import type { Agent } from 'node:http';
import type { LookupFunction } from 'node:net';
import type { Pool } from 'undici';
import { undici } from './undici.ts';
import type { UpstreamConfig } from '../config/schema.ts';
import { log } from '../observe/log.ts';
import { endpointAgent } from './agent.ts';
import { chooseIndex, untried, type Cursor } from './balance.ts';
import { UpstreamBreaker } from './breaker.ts';
import { RetryBudget } from './budget.ts';
import { DnsDiscovery } from './discovery.ts';
import { HealthChecker, HealthCount } from './health.ts';
import { OutlierState, recordResult } from './outlier.ts';
import { upstreamTlsOptions, type UpstreamTlsOptions } from './tls-options.ts';
import type { RegistryOptions } from './registry.ts';

/** How the sidecar connects to an endpoint, beyond its URL and pool. */
export interface EndpointConnection {
  /** TLS options of an https endpoint; default: those of an upstream without `tls` config. */
  readonly tls?: UpstreamTlsOptions;
  /** The TLS server name its requests name (EndpointState.serverName). */
  readonly serverName?: string;
  /** Resolves and checks an egress pass-through destination's host, as its pool does (egress/policy.ts checkedLookup). */
  readonly lookup?: LookupFunction;
  /** The options its pool was made with: its health-check pool is made alike. */
  readonly poolOptions?: Pool.Options;
  /** The HTTP version its connections speak, as far as it is known (protocolOf). */
  readonly protocol?: UpstreamProtocol;
}

/**
 * The HTTP version spoken to an endpoint: fixed by `protocol` (http1, h2,
 * h2c), or, with `auto` on https, what ALPN chose on its last connection.
 */
export interface UpstreamProtocol {
  readonly configured: UpstreamConfig['protocol'];
  /** "1.1" or "2": the access log's `upstreamProtocol`. */
  version: '1.1' | '2';
}

export class EndpointState {
  readonly url: string;
  /** scheme://host:port, as undici wants it. */
  readonly origin: string;
  /** host:port, for Host headers. */
  readonly authority: string;
  /** The URL as logs and the admin port show it (a part that came from `${VAR}` is [redacted]). */
  shown: string;
  /** host:port as the access log shows it. */
  shownAuthority: string;
  readonly pool: Pool;
  readonly poolKey: string;
  /** TLS options of an https:// endpoint (the pool's, and those of the sidecar's own connections to it). */
  readonly tls: UpstreamTlsOptions | undefined;
  /** The options `pool` was made with (its health-check pool is made alike). */
  readonly poolOptions: Pool.Options | undefined;
  /**
   * For an https endpoint, the TLS server name every request to it names
   * (undici's `servername` dispatch option): `tls.serverName`, else the
   * endpoint's host. Without it undici takes the name from each request's
   * Host header, which is the client's on ingress: a bogus Host made the
   * certificate check fail (and opened the breaker for everybody), and each
   * new Host re-opened the connection. undefined for http.
   */
  readonly serverName: string | undefined;
  /** Connections outside the pool (WebSocket upgrades): the same TLS options, and lookup (agent.ts). */
  readonly agent: Agent;
  /** The HTTP version of its pool's connections. */
  readonly protocol: UpstreamProtocol;
  /** Requests, tunnels and WebSockets under way on it (GET /upstreams, least-request). */
  inFlight = 0;
  /**
   * Tunnels and WebSockets open on it: each holds a connection of its own,
   * outside the pool, counted against `connections` (upstream/held.ts).
   */
  held = 0;
  /** Verdict of the active health check; true without one. */
  healthy = true;
  health = new HealthCount();
  outlier = new OutlierState();
  /** Tries that failed (what the breaker and ejection count as failures), for the status page. */
  failures = 0;
  /** Why the last failed try failed (an error code, or `HTTP 503`), and when (ms since the epoch). */
  lastError: string | undefined = undefined;
  lastErrorAt = 0;

  constructor(url: string, pool: Pool, poolKey: string, connection: EndpointConnection = {}) {
    const parsed = new URL(url);
    this.url = url;
    this.origin = parsed.origin;
    this.authority = parsed.host;
    this.shown = url;
    this.shownAuthority = parsed.host;
    this.pool = pool;
    this.poolKey = poolKey;
    this.tls = connection.tls ?? upstreamTlsOptions(undefined, url);
    this.serverName = connection.serverName;
    this.agent = endpointAgent(this.tls, connection.lookup);
    this.poolOptions = connection.poolOptions;
    this.protocol = connection.protocol ?? { configured: 'http1', version: '1.1' };
  }

  /** Sets how the URL is shown; the authority is read from it as text, since [redacted] is no host a URL parser takes. */
  show(shown: string): void {
    this.shown = shown;
    this.shownAuthority = shown.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/^[^@/?#]*@/, '').replace(/[/?#].*$/, '');
  }

  /** Takes over the health and ejection state of the endpoint it replaces (same URL, new pool). */
  inherit(previous: EndpointState): void {
    this.healthy = previous.healthy;
    this.health = previous.health;
    this.outlier = previous.outlier;
    this.failures = previous.failures;
    this.lastError = previous.lastError;
    this.lastErrorAt = previous.lastErrorAt;
  }

  /** A try on this endpoint failed for `reason`. */
  noteFailure(reason: string): void {
    this.failures++;
    this.lastError = reason;
    this.lastErrorAt = Date.now();
  }
}

/** Healthy and not ejected: an endpoint a try may go to. */
function usable(endpoint: EndpointState, now: number): boolean {
  return endpoint.healthy && !endpoint.outlier.isEjected(now);
}

/** One upstream in GET /upstreams (SPEC "Admin JSON"); `breaker` is "none" when the upstream has none. */
export interface UpstreamView {
  readonly breaker: 'closed' | 'open' | 'half_open' | 'none';
  readonly endpoints: ReadonlyArray<EndpointView>;
}

/** One endpoint in GET /upstreams: the SPEC's fields, then the failed tries and the last failure (ISO time). */
export interface EndpointView {
  readonly url: string;
  readonly healthy: boolean;
  readonly ejected: boolean;
  readonly inFlight: number;
  readonly failures: number;
  readonly lastError: string | null;
  readonly lastErrorAt: string | null;
}

export class UpstreamState {
  readonly name: string;
  /**
   * The `upstream` label of its metrics: the name for a configured upstream. An
   * egress pass-through destination passes its route's name instead:
   * destinations are as many as the apps ask for, and every label value is a
   * series kept forever.
   */
  readonly metricLabel: string;
  config: UpstreamConfig;
  endpoints: EndpointState[];
  /** Round-robin cursor; survives reloads with the upstream. */
  readonly cursor: Cursor = { value: 0 };
  readonly budget = new RetryBudget();
  breaker: UpstreamBreaker | undefined;
  health: HealthChecker<EndpointState> | undefined;
  /** The health check settings in force (also where another process runs the checks). */
  #healthSettings: UpstreamConfig['healthCheck'];
  /** Resolves `discovery.dns` (not where another process resolves for this one). */
  discovery: DnsDiscovery | undefined;

  constructor(name: string, config: UpstreamConfig, endpoints: EndpointState[], metricLabel: string = name) {
    this.name = name;
    this.metricLabel = metricLabel;
    this.config = config;
    this.endpoints = endpoints;
  }

  /**
   * The endpoint for the next try by the `balance` policy, among the healthy,
   * non-ejected endpoints not in `tried` (unless all were tried); undefined
   * when no endpoint is eligible (503 no_healthy_endpoint).
   */
  pick(tried?: ReadonlySet<EndpointState>, now: number = performance.now()): EndpointState | undefined {
    const all = this.endpoints;
    // No copy (and no closure) on the common path, where every endpoint is usable.
    let eligible: readonly EndpointState[] = all;
    for (const endpoint of all) {
      if (usable(endpoint, now)) continue;
      eligible = all.filter((each) => usable(each, now));
      break;
    }
    if (eligible.length === 0) return undefined;
    const candidates = untried(eligible, tried);
    return candidates[chooseIndex(this.config.balance, candidates, this.cursor)];
  }

  /** Passive health: the result of one try on `endpoint`. */
  report(endpoint: EndpointState, failed: boolean, now?: number): void {
    const outlier = this.config.outlier;
    if (!outlier) return;
    const ejectedFor = recordResult(endpoint, this.endpoints, failed, outlier, now ?? performance.now());
    if (ejectedFor !== undefined) {
      log.warn({ upstream: this.name, endpoint: endpoint.shown, ejectedForMs: ejectedFor, multiplier: endpoint.outlier.multiplier }, 'endpoint ejected');
    }
  }

  view(now: number = performance.now()): UpstreamView {
    return {
      breaker: this.breaker?.state ?? 'none',
      endpoints: this.endpoints.map((endpoint) => ({
        url: endpoint.shown,
        healthy: endpoint.healthy,
        ejected: endpoint.outlier.isEjected(now),
        inFlight: endpoint.inFlight,
        failures: endpoint.failures,
        lastError: endpoint.lastError ?? null,
        lastErrorAt: endpoint.lastErrorAt > 0 ? new Date(endpoint.lastErrorAt).toISOString() : null,
      })),
    };
  }

  /**
   * Starts, keeps, restarts or stops the breaker, the health checker and the
   * DNS discovery (which tells `onDiscovered` each new set of endpoint URLs)
   * to match `config` (and the registry's options).
   */
  syncPolicies(options: RegistryOptions = {}, onDiscovered?: (urls: readonly string[]) => void): void {
    const { healthCheck } = this.config;
    const dns = options.discovery === 'follow' ? undefined : this.config.discovery?.dns;
    if (!sameSettings(this.discovery?.config, dns)) {
      this.discovery?.stop();
      this.discovery = dns && onDiscovered && new DnsDiscovery(this.name, dns, onDiscovered);
      this.discovery?.start();
    }
    const breaker = options.breakers === false ? undefined : this.config.breaker;
    if (!sameSettings(this.breaker?.config, breaker)) {
      this.breaker?.shutdown();
      this.breaker = breaker && new UpstreamBreaker(this.name, breaker);
    }
    if (!sameSettings(this.#healthSettings, healthCheck)) {
      this.#healthSettings = healthCheck;
      this.health?.stop();
      this.health = undefined;
      for (const endpoint of this.endpoints) {
        endpoint.healthy = true;
        endpoint.health = new HealthCount();
      }
      if (healthCheck && options.health !== 'follow') {
        this.health = new HealthChecker(
          this.name,
          healthCheck,
          () => this.endpoints,
          (endpoint) => new undici.Pool(endpoint.origin, { ...endpoint.poolOptions, connections: 1 }),
          options.onHealthChange,
        );
        this.health.start();
      }
    }
  }

  /** Stops the timers of the breaker, the health checker and the discovery. */
  stopPolicies(): void {
    this.discovery?.stop();
    this.discovery = undefined;
    this.breaker?.shutdown();
    this.breaker = undefined;
    this.health?.stop();
    this.health = undefined;
    this.#healthSettings = undefined;
  }
}

function sameSettings(a: object | undefined, b: object | undefined): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
