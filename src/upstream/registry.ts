/**
 * The registry of per-upstream and per-endpoint state (state.ts) that outlives
 * a config snapshot: the undici pools (keep-alive connections), the balancer's
 * cursor, the retry budget, the circuit breaker, outlier ejections and active
 * health, and how each endpoint's pool is built (poolOptions). Keyed by
 * upstream name and endpoint URL, so a reload that keeps an upstream keeps its
 * connections and state (Caddy's hosts.go keeps upstream health in a global
 * pool for this reason); a breaker or health check whose settings changed is
 * started afresh.
 */
import type { Pool } from 'undici';
import { undici } from './undici.ts';
import type { UpstreamConfig } from '../config/schema.ts';
import { Secrets } from '../config/secrets.ts';
import { log } from '../observe/log.ts';
import { upstreamTlsOptions, type UpstreamTlsOptions } from './tls-options.ts';
import { UpstreamCertificates, type UpstreamCertificate, type UpstreamTlsMaterial } from '../tls/upstream-certs.ts';
import { upstreamEndpoints } from '../observe/metrics.ts';
import { EndpointState, UpstreamState, type UpstreamProtocol } from './state.ts';


/**
 * Options of the pool of one endpoint; a change of any of them means a new
 * pool, and so does a change of what the upstream's TLS files hold
 * (`material`): a rotated client certificate or CA is used by new requests
 * while the old pool drains. For https, the TLS options come from
 * tls-options.ts; `serverName` is what requests name (EndpointState), and the
 * connector always uses the configured name or the endpoint's host (none for
 * an IP address, whose certificate is checked against the IP), whatever name
 * a request brings: the client's Host never picks the TLS server name or the
 * certificate check.
 */
function poolOptions(
  config: UpstreamConfig,
  url: string,
  material: UpstreamTlsMaterial | undefined,
): { key: string; options: Pool.Options; tls: UpstreamTlsOptions | undefined; serverName: string | undefined; protocol: UpstreamProtocol } {
  const tls = upstreamTlsOptions(config, url, material);
  const configured = config.protocol;
  // undici 8 offers h2 by ALPN unless told not to: the config decides, never the default (issue 18).
  const allowH2 = configured === 'h2' || configured === 'h2c' || (configured === 'auto' && tls !== undefined);
  const useH2c = configured === 'h2c';
  const protocol: UpstreamProtocol = { configured, version: allowH2 && (useH2c || configured === 'h2') ? '2' : '1.1' };
  const connectOptions = { timeout: config.connectTimeout, ...tls, allowH2, useH2c, ...(configured === 'h2' ? { preferH2: true } : {}) };
  let connect: Pool.Options['connect'] = connectOptions;
  if (tls) {
    // What undici's Pool builds from an options object, with the request's server name replaced by ours.
    const connector = undici.buildConnector(connectOptions);
    connect = (request, callback) =>
      connector({ ...request, servername: tls.servername }, (err, socket) => {
        if (err || !socket) return callback(err, null);
        const negotiated = (socket as { alpnProtocol?: string | false }).alpnProtocol === 'h2' ? '2' : '1.1';
        if (configured === 'h2' && negotiated !== '2') {
          socket.destroy();
          return callback(Object.assign(new Error(`the endpoint did not choose h2 by ALPN (protocol: h2): it speaks HTTP/1.1 only`), { code: 'ERR_TLS_ALPN_H2_REFUSED' }), null);
        }
        protocol.version = negotiated;
        callback(null, socket);
      });
  }
  const options: Pool.Options = {
    connections: config.connections,
    allowH2,
    // Below the endpoint's own keep-alive timeout, so we never reuse a socket it is closing.
    keepAliveTimeout: config.idleTimeout,
    keepAliveMaxTimeout: config.idleTimeout,
    keepAliveTimeoutThreshold: 1_000,
    connect,
    // Per-request timeouts are set by the route on each dispatch.
    headersTimeout: 0,
    bodyTimeout: 0,
  };
  const key = JSON.stringify([config.connections, config.idleTimeout, config.connectTimeout, configured, tls ? [config.tls ?? null, tls.servername ?? null, material?.hash ?? null] : null]);
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  return { key, options, tls, serverName: tls ? (tls.servername ?? host) : undefined, protocol };
}

/** How a registry runs the policies that keep state; the defaults suit a single process. */
export interface RegistryOptions {
  /** False in a cluster primary: it carries no traffic, so its breakers would only ever say "closed". */
  readonly breakers?: boolean;
  /**
   * 'probe' (default): run the active health checks here. 'follow': take the
   * verdicts from `follow()`, as a cluster worker does from its primary, so an
   * endpoint is probed once per sidecar, not once per process.
   */
  readonly health?: 'probe' | 'follow';
  /** Called when an active health check changes an endpoint's verdict. */
  readonly onHealthChange?: () => void;
  /**
   * 'resolve' (default): run `discovery.dns` here. 'follow': take the
   * discovered endpoints from `followDiscovered()`, as a cluster worker does
   * from its primary: one resolver per sidecar, and every process routes to
   * the same set.
   */
  readonly discovery?: 'resolve' | 'follow';
  /** Called when the DNS discovery of an upstream found a new set of endpoints. */
  readonly onDiscoveryChange?: () => void;
}

/** The endpoint URLs each discovered upstream has now, by upstream name. */
export type DiscoveredSets = Readonly<Record<string, readonly string[]>>;

/** An endpoint to be: its URL and the options of its pool. */
type PlannedEndpoint = { url: string } & ReturnType<typeof poolOptions>;

/** An endpoint an active health check found unhealthy: [upstream, endpoint URL]. */
export type Unhealthy = readonly [upstream: string, url: string];

export class UpstreamRegistry {
  readonly #upstreams = new Map<string, UpstreamState>();
  readonly #options: RegistryOptions;
  /** In 'follow' mode, the last verdicts received: `${upstream} ${url}` of each unhealthy endpoint. */
  #followed = new Set<string>();
  /** The last endpoint URLs DNS discovery found for each upstream that has `discovery` (kept across reloads). */
  readonly #discovered = new Map<string, readonly string[]>();
  #secrets: Secrets = Secrets.NONE;
  /** The upstreams' TLS files, watched: a usable change builds the pools again (new requests get the new files). */
  readonly #tls = new UpstreamCertificates(() => this.#rebuild());
  /** The upstreams of the last reconcile, to build again from when a TLS file changes. */
  #last: Readonly<Record<string, UpstreamConfig>> | undefined;

  constructor(options: RegistryOptions = {}) {
    this.#options = options;
  }

  /** The upstreams' client certificates and CAs in use, for GET /certs. */
  certificates(): UpstreamCertificate[] {
    return this.#tls.certificates();
  }

  #rebuild(): void {
    if (!this.#last) return;
    try {
      this.reconcile(this.#last, this.#secrets);
    } catch (err) {
      log.error({ err }, 'rebuilding the upstream pools after a TLS file change failed');
    }
  }

  get(name: string): UpstreamState | undefined {
    return this.#upstreams.get(name);
  }

  all(): IterableIterator<UpstreamState> {
    return this.#upstreams.values();
  }

  /** Every endpoint that an active health check holds unhealthy now. */
  unhealthy(): Unhealthy[] {
    const found: Unhealthy[] = [];
    for (const state of this.#upstreams.values()) {
      if (!state.config.healthCheck) continue;
      for (const endpoint of state.endpoints) if (!endpoint.healthy) found.push([state.name, endpoint.url]);
    }
    return found;
  }

  /** 'follow' mode: applies the verdicts of the process that runs the checks; an endpoint not named is healthy. */
  follow(unhealthy: readonly Unhealthy[]): void {
    this.#followed = new Set(unhealthy.map(([upstream, url]) => `${upstream} ${url}`));
    this.#applyFollowed();
  }

  #applyFollowed(): void {
    if (this.#options.health !== 'follow') return;
    for (const state of this.#upstreams.values()) {
      if (!state.config.healthCheck) continue;
      for (const endpoint of state.endpoints) endpoint.healthy = !this.#followed.has(`${state.name} ${endpoint.url}`);
    }
  }

  /**
   * Brings the registry in line with a config: new upstreams and endpoints get
   * pools, kept ones keep theirs (and their state), removed ones drain and close.
   * `secrets` says how each endpoint URL may be shown.
   * Throws only when a TLS file cannot be used, before anything changed.
   */
  reconcile(upstreams: Readonly<Record<string, UpstreamConfig>>, secrets: Secrets = Secrets.NONE): void {
    this.#tls.sync(upstreams);
    this.#secrets = secrets;
    this.#last = upstreams;
    const planned = new Map<string, { config: UpstreamConfig; endpoints: PlannedEndpoint[] }>();
    for (const [name, config] of Object.entries(upstreams)) {
      // A changed discovery keeps routing to what the old one found until the new one first
      // answers (Envoy warms a changed cluster the same way); fixed endpoints forget it.
      if (!config.discovery) this.#discovered.delete(name);
      const urls = config.endpoints ?? this.#discovered.get(name) ?? [];
      const material = this.#tls.material(name);
      planned.set(name, { config, endpoints: urls.map((url) => ({ url, ...poolOptions(config, url, material) })) });
    }

    const retired: EndpointState[] = [];
    for (const [name, plan] of planned) {
      const existing = this.#upstreams.get(name);
      let state = existing;
      if (state) state.config = plan.config;
      else {
        state = new UpstreamState(name, plan.config, []);
        this.#upstreams.set(name, state);
      }
      retired.push(...this.#place(state, plan.endpoints));
      state.syncPolicies(this.#options, (urls) => this.#discover(name, urls));
    }
    for (const [name, state] of this.#upstreams) {
      if (planned.has(name)) continue;
      this.#upstreams.delete(name);
      this.#discovered.delete(name);
      upstreamEndpoints.remove({ upstream: name });
      state.stopPolicies();
      retired.push(...state.endpoints);
    }
    for (const endpoint of retired) drain(endpoint);
    this.#applyFollowed();
    // A check that was reset, added or removed changes verdicts too.
    this.#options.onHealthChange?.();
  }

  /**
   * Gives `state` the endpoints of `planned`: one kept with its pool and state
   * when its URL and pool settings stay, a fresh one (inheriting health and
   * ejection when only the pool settings changed) otherwise. Returns the
   * endpoints that left, for the caller to drain.
   */
  #place(state: UpstreamState, planned: readonly PlannedEndpoint[]): EndpointState[] {
    const previous = new Map(state.endpoints.map((endpoint) => [endpoint.url, endpoint]));
    const endpoints = planned.map(({ url, key, options, tls, serverName, protocol }) => {
      const kept = previous.get(url);
      if (kept && kept.poolKey === key) {
        previous.delete(url);
        return kept;
      }
      const fresh = new EndpointState(url, new undici.Pool(new URL(url).origin, options), key, { tls, serverName, poolOptions: options, protocol });
      if (kept) fresh.inherit(kept);
      return fresh;
    });
    // A discovered URL came from DNS, not from the config: nothing in it is secret.
    const configured = state.config.endpoints !== undefined;
    endpoints.forEach((endpoint, index) => endpoint.show(configured ? String(this.#secrets.shown(['upstreams', state.name, 'endpoints', index], endpoint.url)) : endpoint.url));
    state.endpoints = endpoints;
    upstreamEndpoints.set({ upstream: state.metricLabel }, endpoints.length);
    return [...previous.values()];
  }

  /** A new set of endpoints from DNS for `name`: new addresses are added, vanished ones drained and removed. */
  #discover(name: string, urls: readonly string[]): void {
    this.#discovered.set(name, urls);
    const state = this.#upstreams.get(name);
    if (!state || state.config.endpoints !== undefined) return;
    const material = this.#tls.material(name);
    for (const endpoint of this.#place(state, urls.map((url) => ({ url, ...poolOptions(state.config, url, material) })))) drain(endpoint);
    this.#applyFollowed();
    this.#options.onDiscoveryChange?.();
  }

  /** The endpoint URLs of every discovered upstream now (what a cluster primary passes on to its workers). */
  discovered(): Record<string, readonly string[]> {
    return Object.fromEntries(this.#discovered);
  }

  /** 'follow' mode: applies the sets the resolving process found; an upstream not named keeps its set. */
  followDiscovered(sets: DiscoveredSets): void {
    for (const [name, urls] of Object.entries(sets)) {
      if (this.#discovered.get(name)?.join(' ') !== urls.join(' ')) this.#discover(name, urls);
    }
  }

  /** Closes every pool, letting in-flight requests finish. */
  close(): Promise<void> {
    return this.#end('close');
  }

  /** Destroys every pool at once (after the shutdown deadline). */
  destroy(): Promise<void> {
    return this.#end('destroy');
  }

  async #end(how: 'close' | 'destroy'): Promise<void> {
    this.#tls.close();
    this.#last = undefined;
    const states = [...this.#upstreams.values()];
    for (const state of states) state.stopPolicies();
    const ending = states.flatMap((state) => state.endpoints.map((endpoint) => endpoint.pool[how]()));
    this.#upstreams.clear();
    await Promise.allSettled(ending);
  }
}

/** A removed endpoint: in-flight requests finish on it, then its pool closes. */
function drain(endpoint: EndpointState): void {
  endpoint.pool.close().catch((err: unknown) => log.warn({ err, endpoint: endpoint.shown }, 'closing a retired upstream pool failed'));
}
