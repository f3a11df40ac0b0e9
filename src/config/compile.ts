/**
 * Validated config -> immutable Snapshot. Everything a request needs on its hot
 * path (matchers, header rules, clamped timeouts) is computed here once, so the
 * request path reads only plain, frozen objects.
 */
import type {
  Config,
  EgressRouteConfig,
  IngressRouteConfig,
  ListenerTlsConfig,
  MatchConfig,
  RetryConfig,
  StaticConfig,
  UpstreamConfig,
} from './schema.ts';
import type { BlockList } from 'node:net';
import { canonicalIp } from '../net/address.ts';
import { parseListen } from './units.ts';
import { Secrets } from './secrets.ts';
import type { PathOptions } from '../net/normalize-path.ts';
import { compileTrustedProxies } from '../net/trusted-proxies.ts';
import { withoutTrailingDot } from '../proxy/route.ts';
import { compilePolicies, type PolicyChain } from '../policy/chain.ts';
import { tracingSettings, type TracingSettings } from '../tracing/settings.ts';

/** Until the response head arrives, all tries together (Envoy's route timeout is 15s; ours is a little kinder). */
export const DEFAULT_ROUTE_TIMEOUT_MS = 30_000;
/** Longest silence inside a response body (the default of undici's bodyTimeout, which forward.ts replaces with its own timer). */
export const DEFAULT_BODY_IDLE_MS = 300_000;

export type ListenerName = 'ingress' | 'egress';

export interface CompiledMatch {
  readonly host?: (host: string) => boolean;
  readonly ports?: ReadonlySet<number>;
  readonly path?: string;
  readonly pathRegex?: RegExp;
  readonly methods?: ReadonlySet<string>;
  readonly headers?: ReadonlyArray<readonly [name: string, test: (value: string) => boolean]>;
}

export interface HeaderRules {
  /** [lower-case name, value] pairs set on the message, replacing what was there. */
  readonly add: ReadonlyArray<readonly [string, string]>;
  /** Lower-case names removed. */
  readonly remove: ReadonlySet<string>;
}

export interface CompiledRoute {
  readonly name: string;
  readonly listener: ListenerName;
  readonly match: CompiledMatch;
  readonly upstream?: string;
  readonly static?: StaticConfig;
  readonly stripPrefix?: string;
  readonly requestHeaders?: HeaderRules;
  readonly responseHeaders?: HeaderRules;
  /** Deadline for the response head, all tries together (ms). */
  readonly timeout: number;
  /** Longest pause inside a response body (ms). */
  readonly idleTimeout: number;
  /** With perTryTimeout already clamped to `timeout`. */
  readonly retry?: RetryConfig;
  /** 0 = no limit. */
  readonly maxBody: number;
  readonly websocket: boolean;
  /** Egress pass-through connect timeout (ms). */
  readonly connectTimeout?: number;
  /** Egress pass-through: which special addresses the route may reach (egress/policy.ts); absent on ingress routes. */
  readonly reach?: Reach;
  /** The listener's `trustedProxies` (kept on the route so the proxy needs nothing else); undefined = nobody. */
  readonly trustedProxies: BlockList | undefined;
  /** The listener's `tls.forwardClientCert`, lower case: set from the client certificate, never taken from the client. */
  readonly clientCertHeader: string | undefined;
  /** Rate limit and compression (policy/chain.ts); undefined when the route has neither. */
  readonly policies: PolicyChain | undefined;
}

/** What an egress route lets a pass-through destination be, besides the addresses every route may reach. */
export interface Reach {
  /** The route names its host exactly (no `*`, not absent): loopback and link-local are then reachable. */
  readonly exactHost: boolean;
  /** `allowLoopback`: loopback, the unspecified address and this host's own addresses. */
  readonly loopback: boolean;
  /** `allowPrivate`: link-local and cloud metadata addresses. */
  readonly private: boolean;
}

export interface ListenerSnapshot {
  readonly host: string;
  readonly port: number;
  readonly routes: readonly CompiledRoute[];
  readonly settings: NonNullable<Config['ingress'] | Config['egress']>;
  /** How request paths are normalised before routing. */
  readonly paths: PathOptions;
  /** HTTPS on the listener (ingress only). */
  readonly tls: ListenerTlsConfig | undefined;
}

export interface Snapshot {
  readonly hash: string;
  readonly source: string;
  readonly loadedAt: Date;
  readonly config: Config;
  /** How each value of `config` may be shown (admin port, logs, errors). */
  readonly secrets: Secrets;
  readonly upstreams: Readonly<Record<string, UpstreamConfig>>;
  readonly ingress?: ListenerSnapshot;
  readonly egress?: ListenerSnapshot;
  /** Tracing as the config and the OTEL_* variables (read when the config is compiled) set it; undefined = off. */
  readonly tracing?: TracingSettings;
}

/** A loaded config with where and when it came from (load.ts's successful LoadResult). */
export interface LoadedConfig {
  readonly config: Config;
  readonly hash: string;
  readonly source: string;
  readonly loadedAt: Date;
  /** Absent for a config that was not loaded from a file: nothing in it came from the environment. */
  readonly secrets?: Secrets;
}

/** Builds the immutable snapshot a request will carry from start to end. */
export function compile({ config, hash, source, loadedAt, secrets = Secrets.NONE }: LoadedConfig): Snapshot {
  const snapshot: Snapshot = {
    hash,
    source,
    loadedAt,
    config,
    secrets,
    upstreams: config.upstreams,
    ingress: config.ingress && compileListener('ingress', config.ingress, config.workers),
    egress: config.egress && compileListener('egress', config.egress, config.workers),
    tracing: tracingSettings(config.tracing, process.env),
  };
  return Object.freeze(snapshot);
}

function compileListener(
  listener: ListenerName,
  settings: NonNullable<Config['ingress'] | Config['egress']>,
  workers: number,
): ListenerSnapshot {
  const address = parseListen(settings.listen);
  if (!address) throw new Error(`unparseable listen address ${settings.listen}`); // the schema already refused it
  const trustedProxies = compileTrustedProxies(settings.trustedProxies);
  const tls = 'tls' in settings ? settings.tls : undefined;
  const clientCertHeader = tls?.forwardClientCert?.toLowerCase();
  const routes = (settings.routes as ReadonlyArray<IngressRouteConfig | EgressRouteConfig>).map((route, index) =>
    compileRoute(listener, route, index, settings, trustedProxies, workers, clientCertHeader),
  );
  return Object.freeze({ host: address.host, port: address.port, routes: Object.freeze(routes), settings, paths: settings.paths, tls });
}

function compileRoute(
  listener: ListenerName,
  route: IngressRouteConfig | EgressRouteConfig,
  index: number,
  settings: NonNullable<Config['ingress'] | Config['egress']>,
  trustedProxies: BlockList | undefined,
  workers: number,
  clientCertHeader: string | undefined,
): CompiledRoute {
  const timeout = route.timeout ?? DEFAULT_ROUTE_TIMEOUT_MS;
  const name = route.name ?? `${listener}-${index}`;
  const isStatic = 'static' in route && route.static !== undefined;
  const retry = route.retry && {
    ...route.retry,
    perTryTimeout: Math.min(route.retry.perTryTimeout ?? timeout, timeout),
  };
  return Object.freeze({
    name,
    listener,
    match: compileMatch(route.match),
    upstream: route.upstream,
    static: 'static' in route ? route.static : undefined,
    stripPrefix: route.rewrite?.stripPrefix,
    requestHeaders: compileHeaderRules(route.headers?.request),
    responseHeaders: compileHeaderRules(route.headers?.response),
    timeout,
    idleTimeout: route.idleTimeout ?? DEFAULT_BODY_IDLE_MS,
    retry: retry && Object.freeze(retry),
    maxBody: route.maxBody ?? settings.maxBody,
    websocket: 'websocket' in route ? route.websocket : false,
    connectTimeout: 'connectTimeout' in route ? route.connectTimeout : undefined,
    reach: compileReach(route),
    trustedProxies,
    clientCertHeader,
    policies: compilePolicies(route, { listener, route: name, static: isStatic, trustedProxies, workers, listenerCompress: settings.compress }),
  });
}

/** Egress routes only: which special addresses a pass-through destination of the route may be. */
function compileReach(route: IngressRouteConfig | EgressRouteConfig): Reach | undefined {
  if (!('allowLoopback' in route)) return undefined;
  const host = route.match.host;
  return Object.freeze({ exactHost: host !== undefined && !host.includes('*'), loopback: route.allowLoopback, private: route.allowPrivate });
}

function compileMatch(match: MatchConfig): CompiledMatch {
  return Object.freeze({
    host: match.host === undefined ? undefined : hostMatcher(match.host),
    ports: match.ports && new Set(match.ports),
    path: match.path,
    pathRegex: match.pathRegex === undefined ? undefined : new RegExp(match.pathRegex),
    methods: match.methods && new Set(match.methods),
    headers:
      match.headers &&
      Object.entries(match.headers).map(([name, expected]) => {
        const pattern = typeof expected === 'string' ? undefined : new RegExp(expected.regex);
        const test = pattern ? (value: string) => pattern.test(value) : (value: string) => value === expected;
        return [name.toLowerCase(), test] as const;
      }),
  });
}

/**
 * `*` any host, `*.example.com` any subdomain (not the apex, as in Envoy), else
 * exact; case-insensitive (hosts arrive lower-cased). An IP literal also
 * matches in canonical form, as egress request hosts are given
 * (egress/target.ts): `::ffff:127.0.0.1` matches 127.0.0.1. A fully qualified
 * name's trailing dot is ignored on both sides: `admin.example.com.` is the
 * same host as `admin.example.com` to DNS, so it must not skip that host's route.
 */
function hostMatcher(pattern: string): (host: string) => boolean {
  const lower = withoutTrailingDot(pattern.toLowerCase().replace(/^\[|\]$/g, ''));
  if (lower === '*') return () => true;
  if (lower.startsWith('*.')) {
    const suffix = lower.slice(1);
    return (host) => {
      const name = withoutTrailingDot(host);
      return name.length > suffix.length && name.endsWith(suffix);
    };
  }
  const exact = canonicalIp(lower) ?? lower;
  return (host) => host === exact || host === lower || (host.length === lower.length + 1 && withoutTrailingDot(host) === lower);
}


function compileHeaderRules(rules: { add?: Record<string, string>; remove?: string[] } | undefined): HeaderRules | undefined {
  if (!rules) return undefined;
  return Object.freeze({
    add: Object.entries(rules.add ?? {}).map(([name, value]) => [name.toLowerCase(), value] as const),
    remove: new Set((rules.remove ?? []).map((name) => name.toLowerCase())),
  });
}
