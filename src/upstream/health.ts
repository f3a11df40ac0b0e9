/**
 * Active health checks (`healthCheck`): every `interval`, one HTTP GET of
 * `path` per endpoint; a 2xx or 3xx answer within `timeout` passes. After
 * `unhealthyAfter` failures in a row an endpoint gets no traffic; after
 * `healthyAfter` passes in a row it gets traffic again. Endpoints start
 * healthy (SPEC: "healthy until their checks fail").
 *
 * Probes use their own one-connection pool per endpoint, as Envoy's health
 * checker has its own connections: a probe never queues behind proxied
 * requests on a saturated pool and is not mistaken for the endpoint's fault.
 */
import type { Dispatcher } from 'undici';
import type { UpstreamConfig } from '../config/schema.ts';
import { log } from '../observe/log.ts';

export type HealthCheckConfig = NonNullable<UpstreamConfig['healthCheck']>;

/** Consecutive results of one endpoint's probes. */
export class HealthCount {
  passes = 0;
  fails = 0;
}

/** An endpoint as the checker sees it. */
export interface Probed {
  readonly url: string;
  /** The URL as logs show it. */
  readonly shown: string;
  readonly origin: string;
  healthy: boolean;
  readonly health: HealthCount;
  /** Changes when the endpoint's connection settings change (a rotated TLS file): its probes then get a new pool too. */
  readonly poolKey?: string;
}

/** Applies one probe result to the counts; returns the new verdict. */
export function nextHealth(healthy: boolean, count: HealthCount, passed: boolean, config: Pick<HealthCheckConfig, 'unhealthyAfter' | 'healthyAfter'>): boolean {
  if (passed) {
    count.passes++;
    count.fails = 0;
    return healthy || count.passes >= config.healthyAfter;
  }
  count.fails++;
  count.passes = 0;
  return healthy && count.fails < config.unhealthyAfter;
}

type ProbeDispatcher = Dispatcher & { close(): Promise<void> };

export class HealthChecker<P extends Probed = Probed> {
  readonly config: HealthCheckConfig;
  readonly #upstream: string;
  readonly #endpoints: () => readonly P[];
  readonly #dispatcherFor: (endpoint: P) => ProbeDispatcher;
  readonly #dispatchers = new Map<string, ProbeDispatcher>();
  readonly #probing = new Set<string>();
  readonly #onChange: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  /** `onChange` hears of every changed verdict (a cluster primary passes them on to its workers). */
  constructor(
    upstream: string,
    config: HealthCheckConfig,
    endpoints: () => readonly P[],
    dispatcherFor: (endpoint: P) => ProbeDispatcher,
    onChange?: () => void,
  ) {
    this.#upstream = upstream;
    this.config = config;
    this.#endpoints = endpoints;
    this.#dispatcherFor = dispatcherFor;
    this.#onChange = onChange;
  }

  start(): void {
    this.#timer = setInterval(() => this.#tick(), this.config.interval);
    this.#timer.unref();
    this.#tick();
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    for (const dispatcher of this.#dispatchers.values()) dispatcher.close().catch(() => undefined);
    this.#dispatchers.clear();
  }

  #tick(): void {
    const endpoints = this.#endpoints();
    const live = new Set(endpoints.map(dispatcherKey));
    for (const [key, dispatcher] of this.#dispatchers) {
      if (live.has(key)) continue;
      this.#dispatchers.delete(key);
      dispatcher.close().catch(() => undefined);
    }
    for (const endpoint of endpoints) {
      if (this.#probing.has(endpoint.url)) continue; // the previous probe is still out: its timeout will count
      this.#probing.add(endpoint.url);
      this.#probe(endpoint)
        .then((passed) => this.#record(endpoint, passed))
        .finally(() => this.#probing.delete(endpoint.url));
    }
  }

  async #probe(endpoint: P): Promise<boolean> {
    const timeout = this.config.timeout;
    try {
      const key = dispatcherKey(endpoint);
      let dispatcher = this.#dispatchers.get(key);
      if (!dispatcher) {
        dispatcher = this.#dispatcherFor(endpoint);
        this.#dispatchers.set(key, dispatcher);
      }
      const { statusCode, body } = await dispatcher.request({
        origin: endpoint.origin,
        method: 'GET',
        path: this.config.path,
        headers: { 'user-agent': 'sidecar-health-check' },
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: AbortSignal.timeout(timeout),
      });
      await body.dump();
      return statusCode >= 200 && statusCode < 400;
    } catch {
      return false;
    }
  }

  #record(endpoint: P, passed: boolean): void {
    if (this.#stopped) return;
    const healthy = nextHealth(endpoint.healthy, endpoint.health, passed, this.config);
    if (healthy === endpoint.healthy) return;
    endpoint.healthy = healthy;
    const entry = { upstream: this.#upstream, endpoint: endpoint.shown, healthy };
    if (healthy) log.info(entry, 'endpoint healthy again');
    else log.warn(entry, 'endpoint failed its health checks');
    this.#onChange?.();
  }
}

/** An endpoint's probe pool: per URL and connection settings. */
function dispatcherKey(endpoint: Probed): string {
  return endpoint.poolKey === undefined ? endpoint.url : `${endpoint.url} ${endpoint.poolKey}`;
}
