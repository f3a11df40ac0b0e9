/**
 * The status page's data (admin `GET /status.json`, and `GET /` renders it):
 * process and app usage, the config and its last reload, per listener and per
 * route rates with 10 minutes of history, rate-limited counts, upstream and
 * endpoint state, the TLS certificates in use, and the sidecar's own recent
 * error answers. The numbers are the counters of
 * /metrics, read every INTERVAL_MS and kept HISTORY_SAMPLES deep here, in the
 * process that owns the admin port, so a page opened now shows the past at
 * once. Label values and texts that could hold a secret go through the
 * snapshot's `secrets.text()`, as every admin answer does.
 */
import { VERSION } from '../version.ts';
import type { ConfigStore } from '../config/store.ts';
import type { Snapshot } from '../config/compile.ts';
import type { MetricsJson } from '../cluster/merge.ts';
import { log } from '../observe/log.ts';
import type { RecentError } from './recent-errors.ts';
import type { EndpointView } from '../upstream/state.ts';
import type { CertificateView } from '../tls/x509.ts';
import { ratesBetween, readSample, routeKey, type Counts, type Rates, type Sample } from './sample.ts';

/** One reading every 2 s, 300 kept: the last 10 minutes. */
export const INTERVAL_MS = 2_000;
export const HISTORY_SAMPLES = 300;


/** The outcome of the last reload (a start is no reload). */
export interface LastReload {
  readonly ok: boolean;
  readonly at: Date;
  readonly hash?: string;
  readonly errors?: readonly string[];
}

export interface BoardDeps {
  readonly store: ConfigStore;
  /** prom-client's JSON of every process's metrics (merged by the primary with workers). */
  readonly metrics: () => Promise<MetricsJson>;
  /** The /upstreams answer (merged by the primary with workers). */
  readonly upstreams: () => Promise<unknown>;
  /** Every process's recent errors, newest first. */
  readonly recentErrors: () => Promise<RecentError[]>;
  /** The GET /certs answer (merged by the primary with workers); absent: no certificates. */
  readonly certificates?: () => Promise<unknown>;
  readonly lastReload: () => LastReload | undefined;
  /** Whether a supervised app runs beside the sidecar. */
  readonly hasApp: () => boolean;
  /** The port a listener is bound to in this process (shown for a configured port 0); undefined when unknown. */
  readonly boundPort?: (listener: 'ingress' | 'egress') => number | undefined;
  readonly intervalMs?: number;
}

export interface CountsJson {
  readonly requests: number;
  readonly '2xx': number;
  readonly '4xx': number;
  readonly '5xx': number;
}

export interface RatesJson extends CountsJson {
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
}

export interface ListenerJson {
  readonly name: string;
  readonly listen: string;
  readonly inFlight: number;
  readonly total: CountsJson;
  readonly rate: RatesJson;
  /** One entry per interval, oldest first: `at` in ms since the epoch, rates per second, latency in ms. */
  readonly history: {
    readonly at: number[];
    readonly requests: number[];
    readonly '2xx': number[];
    readonly '4xx': number[];
    readonly '5xx': number[];
    readonly p50Ms: Array<number | null>;
    readonly p99Ms: Array<number | null>;
  };
}

export interface RouteJson {
  readonly listener: string;
  readonly name: string;
  /** The upstream's name, `static`, `pass-through`, or "" for requests no route matched. */
  readonly target: string;
  readonly total: CountsJson;
  readonly rate: RatesJson;
  /** Requests over the route's `rateLimit`: refused with 429, and let through by `mode: shadow`. */
  readonly rateLimited: { readonly limited: number; readonly shadow: number };
}

/**
 * A certificate the sidecar serves or presents, or a CA it checks against,
 * as GET /certs shows it: `owner` is the listener (`ingress`) or
 * `upstream NAME`; `use` is default / sni / client-ca on a listener, client /
 * ca on an upstream.
 */
export interface CertificateJson extends CertificateView {
  readonly owner: string;
  readonly use: string;
  readonly serverNames?: readonly string[];
}

export type EndpointStateName = 'healthy' | 'unhealthy' | 'ejected';

/** An endpoint as /upstreams shows it, and its state in one word. */
export interface EndpointJson extends EndpointView {
  readonly state: EndpointStateName;
}

export interface UpstreamJson {
  readonly name: string;
  readonly breaker: string;
  readonly retries: number;
  readonly endpoints: EndpointJson[];
}

export interface StatusJson {
  readonly version: string;
  readonly now: string;
  readonly startedAt: string;
  readonly uptimeSeconds: number;
  readonly workers: number;
  readonly intervalSeconds: number;
  readonly sidecar: { readonly rssBytes: number; readonly cpuPercent: number | null };
  readonly app: { readonly up: boolean; readonly rssBytes: number; readonly cpuPercent: number | null } | null;
  readonly config: { readonly hash: string; readonly source: string; readonly loadedAt: string };
  readonly lastReload: { readonly result: 'success' | 'failure'; readonly at: string; readonly hash?: string; readonly errors?: readonly string[] } | null;
  readonly listeners: ListenerJson[];
  readonly routes: RouteJson[];
  readonly upstreams: UpstreamJson[];
  /** The TLS certificates in use (ingress and upstream client certificates, and CAs), soonest to expire first. */
  readonly certificates: CertificateJson[];
  readonly recentErrors: RecentError[];
}

export class StatusBoard {
  readonly #deps: BoardDeps;
  readonly #intervalMs: number;
  /** Oldest first; one more than HISTORY_SAMPLES, so there are HISTORY_SAMPLES intervals. */
  readonly #samples: Sample[] = [];
  #timer: NodeJS.Timeout | undefined;
  #sampling: Promise<void> | undefined;

  constructor(deps: BoardDeps) {
    this.#deps = deps;
    this.#intervalMs = deps.intervalMs ?? INTERVAL_MS;
  }

  /** Takes a first reading now and one every interval. */
  start(): void {
    void this.sample();
    this.#timer = setInterval(() => void this.sample(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Takes one reading into the history (one at a time: a slow worker answer must not pile them up). */
  sample(): Promise<void> {
    this.#sampling ??= this.#read()
      .then((sample) => {
        this.#samples.push(sample);
        if (this.#samples.length > HISTORY_SAMPLES + 1) this.#samples.shift();
      })
      .catch((err: unknown) => log.warn({ err }, 'status: reading the metrics failed'))
      .finally(() => {
        this.#sampling = undefined;
      });
    return this.#sampling;
  }

  async #read(): Promise<Sample> {
    return readSample(await this.#deps.metrics(), Date.now());
  }

  /** The status as of now: totals from a fresh reading, rates since the stored reading at least half an interval older. */
  async json(): Promise<StatusJson> {
    const snapshot = this.#deps.store.current();
    const [now, upstreams, recent, certs] = await Promise.all([
      this.#read(),
      this.#deps.upstreams(),
      this.#deps.recentErrors(),
      this.#deps.certificates?.() ?? Promise.resolve(undefined),
    ]);
    const base = this.#baseFor(now);
    const seconds = base ? (now.at - base.at) / 1000 : 0;
    const hide = (text: string) => snapshot.secrets.text(text);
    const cpuPercent = (cpu: (sample: Sample) => number) => (base && seconds > 0 ? round((Math.max(0, cpu(now) - cpu(base)) / seconds) * 100, 1) : null);
    const views = (upstreams as { upstreams?: Record<string, UpstreamView>; workers?: number }) ?? {};
    const reload = this.#deps.lastReload();
    return {
      version: VERSION,
      now: new Date(now.at).toISOString(),
      startedAt: new Date(Date.now() - process.uptime() * 1000).toISOString(),
      uptimeSeconds: Math.round(process.uptime()),
      workers: snapshot.config.workers,
      intervalSeconds: this.#intervalMs / 1000,
      sidecar: { rssBytes: now.rssBytes, cpuPercent: cpuPercent((sample) => sample.cpuSeconds) },
      app: this.#deps.hasApp() ? { up: now.appUp > 0, rssBytes: now.appRssBytes, cpuPercent: cpuPercent((sample) => sample.appCpuSeconds) } : null,
      config: { hash: snapshot.hash, source: snapshot.source, loadedAt: snapshot.loadedAt.toISOString() },
      lastReload: reload
        ? { result: reload.ok ? 'success' : 'failure', at: reload.at.toISOString(), ...(reload.hash ? { hash: reload.hash } : {}), ...(reload.errors ? { errors: reload.errors.map(hide) } : {}) }
        : null,
      listeners: this.#listeners(snapshot, now, base, seconds),
      routes: this.#routes(snapshot, now, base, seconds, hide),
      upstreams: Object.entries(views.upstreams ?? {}).map(([name, view]) => upstreamJson(name, view, now.retries.get(name) ?? 0)),
      certificates: certificatesJson(certs, hide),
      recentErrors: recent.map((entry) => ({
        ...entry,
        route: hide(entry.route),
        upstream: hide(entry.upstream),
        endpoint: hide(entry.endpoint),
        path: hide(entry.path),
      })),
    };
  }

  /** The stored reading to measure rates against: the newest one at least half an interval before `now`. */
  #baseFor(now: Sample): Sample | undefined {
    for (let index = this.#samples.length - 1; index >= 0; index--) {
      if (now.at - this.#samples[index].at >= this.#intervalMs / 2) return this.#samples[index];
    }
    return undefined;
  }

  #listeners(snapshot: Snapshot, now: Sample, base: Sample | undefined, seconds: number): ListenerJson[] {
    const out: ListenerJson[] = [];
    for (const name of ['ingress', 'egress'] as const) {
      const listener = snapshot[name];
      if (!listener) continue;
      const history = { at: [] as number[], requests: [] as number[], '2xx': [] as number[], '4xx': [] as number[], '5xx': [] as number[], p50Ms: [] as Array<number | null>, p99Ms: [] as Array<number | null> };
      for (let index = 1; index < this.#samples.length; index++) {
        const older = this.#samples[index - 1];
        const newer = this.#samples[index];
        const rates = ratesBetween(older.listeners.get(name), newer.listeners.get(name), (newer.at - older.at) / 1000, newer.bounds);
        history.at.push(newer.at);
        history.requests.push(round(rates.requests, 2));
        history['2xx'].push(round(rates.s2xx, 2));
        history['4xx'].push(round(rates.s4xx, 2));
        history['5xx'].push(round(rates.s5xx, 2));
        history.p50Ms.push(rates.p50Ms === undefined ? null : round(rates.p50Ms, 2));
        history.p99Ms.push(rates.p99Ms === undefined ? null : round(rates.p99Ms, 2));
      }
      out.push({
        name,
        listen: shownListen(String(snapshot.secrets.shown([name, 'listen'], listener.settings.listen)), this.#deps.boundPort?.(name)),
        inFlight: now.inFlight.get(name) ?? 0,
        total: countsJson(now.listeners.get(name)),
        rate: ratesJson(ratesBetween(base?.listeners.get(name), now.listeners.get(name), seconds, now.bounds)),
        history,
      });
    }
    return out;
  }

  #routes(snapshot: Snapshot, now: Sample, base: Sample | undefined, seconds: number, hide: (text: string) => string): RouteJson[] {
    const out: RouteJson[] = [];
    const seen = new Set<string>();
    const add = (listener: string, name: string, target: string) => {
      const key = routeKey(listener, name);
      if (seen.has(key)) return;
      seen.add(key);
      const counts = now.routes.get(key);
      out.push({
        listener,
        name: hide(name),
        target: hide(target),
        total: countsJson(counts),
        rate: ratesJson(ratesBetween(base?.routes.get(key), counts, seconds, now.bounds)),
        rateLimited: now.rateLimited.get(key) ?? { limited: 0, shadow: 0 },
      });
    };
    for (const name of ['ingress', 'egress'] as const) {
      for (const route of snapshot[name]?.routes ?? []) add(name, route.name, route.upstream ?? (route.static ? 'static' : 'pass-through'));
    }
    // Routes a reload removed, and requests no route matched, while they have counts.
    for (const [key, counts] of now.routes) {
      if (seen.has(key) || counts.requests === 0) continue;
      const [listener, ...rest] = key.split(' ');
      add(listener, rest.join(' '), '');
    }
    return out;
  }
}

/** One upstream of the /upstreams answer (a worker of an older build may lack the failure fields). */
interface UpstreamView {
  breaker: string;
  endpoints: Array<Omit<EndpointView, 'failures' | 'lastError' | 'lastErrorAt'> & Partial<EndpointView>>;
}

function upstreamJson(name: string, view: UpstreamView, retries: number): UpstreamJson {
  return {
    name,
    breaker: view.breaker,
    retries,
    endpoints: view.endpoints.map((endpoint) => ({
      url: endpoint.url,
      state: endpoint.ejected ? 'ejected' : endpoint.healthy ? 'healthy' : 'unhealthy',
      healthy: endpoint.healthy,
      ejected: endpoint.ejected,
      inFlight: endpoint.inFlight,
      failures: endpoint.failures ?? 0,
      lastError: endpoint.lastError ?? null,
      lastErrorAt: endpoint.lastErrorAt ?? null,
    })),
  };
}

/** The GET /certs answer as the page lists it: whose and what for, soonest to expire first; file paths redacted as everywhere. */
function certificatesJson(view: unknown, hide: (text: string) => string): CertificateJson[] {
  const listed = (view as { certificates?: Array<CertificateView & { listener?: string; upstream?: string; use: string; serverNames?: string[] }> } | undefined)?.certificates ?? [];
  return listed
    .map(({ listener, upstream, ...certificate }) => ({
      ...certificate,
      owner: listener ?? (upstream === undefined ? '' : `upstream ${hide(upstream)}`),
      file: hide(certificate.file),
    }))
    .sort((a, b) => a.daysLeft - b.daysLeft);
}

/** `host:0` as the port it was bound to, when known. */
function shownListen(listen: string, bound: number | undefined): string {
  return bound !== undefined && listen.endsWith(':0') ? `${listen.slice(0, -1)}${bound}` : listen;
}

function countsJson(counts: Counts | undefined): CountsJson {
  return { requests: counts?.requests ?? 0, '2xx': counts?.s2xx ?? 0, '4xx': counts?.s4xx ?? 0, '5xx': counts?.s5xx ?? 0 };
}

function ratesJson(rates: Rates): RatesJson {
  return {
    requests: round(rates.requests, 2),
    '2xx': round(rates.s2xx, 2),
    '4xx': round(rates.s4xx, 2),
    '5xx': round(rates.s5xx, 2),
    p50Ms: rates.p50Ms === undefined ? null : round(rates.p50Ms, 2),
    p99Ms: rates.p99Ms === undefined ? null : round(rates.p99Ms, 2),
  };
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
