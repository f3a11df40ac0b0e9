/**
 * Checks the schema cannot express: references between sections, listeners
 * that would collide at bind time, and files the config names. They run on the
 * validated config (defaults filled in) and report every finding at once, so
 * a user fixes a config in one round, not one error per restart.
 */
import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { Config, EgressRouteConfig, IngressRouteConfig } from './schema.ts';
import type { PathSegment, Problem } from './errors.ts';
import { parseListen } from './units.ts';
import { tlsProblems } from '../tls/check.ts';
import { errnoText } from './errors.ts';

export { errnoText } from './errors.ts';

/**
 * Makes the paths the config names absolute, relative to the config file's
 * folder (not the process's cwd, which differs between `npm start`, systemd
 * and a container). Mutates `config`, which the loader has not frozen yet.
 */
export function resolvePaths(config: Config, baseDir: string): void {
  const absolute = (path: string): string => (isAbsolute(path) ? path : resolve(baseDir, path));
  if (config.app) config.app.cwd = absolute(config.app.cwd);
  for (const upstream of Object.values(config.upstreams)) {
    const tls = upstream.tls;
    if (!tls) continue;
    if (tls.ca !== undefined) tls.ca = absolute(tls.ca);
    if (tls.cert !== undefined) tls.cert = absolute(tls.cert);
    if (tls.key !== undefined) tls.key = absolute(tls.key);
  }
  const tls = config.ingress?.tls;
  if (tls) {
    tls.cert = absolute(tls.cert);
    tls.key = absolute(tls.key);
    if (tls.ca !== undefined) tls.ca = absolute(tls.ca);
    for (const entry of tls.sni) {
      entry.cert = absolute(entry.cert);
      entry.key = absolute(entry.key);
    }
  }
  for (const route of config.ingress?.routes ?? []) {
    if (route.static) route.static.root = absolute(route.static.root);
  }
}

/**
 * Every semantic problem of a validated config whose paths are already absolute.
 *
 * @param knownUpstreams the names a route may refer to; the loader passes those
 *   written in the file when it checks the valid part of a refused config
 *   (undefined: references cannot be judged and are not checked)
 */
export function checkConfig(config: Config, knownUpstreams: readonly string[] | undefined = Object.keys(config.upstreams)): Problem[] {
  return [
    ...checkListeners(config),
    ...checkUpstreams(config),
    ...checkRoutes('ingress', config.ingress?.routes ?? [], knownUpstreams),
    ...checkRoutes('egress', config.egress?.routes ?? [], knownUpstreams),
    ...checkApp(config),
    ...tlsProblems(config),
  ];
}

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

/** Hosts two listeners could both receive on; `::` is dual-stack on Linux, so it overlaps IPv4 too. */
function overlaps(a: string, b: string): boolean {
  const names = (host: string): string[] => {
    const lower = host.toLowerCase();
    return lower === 'localhost' ? ['127.0.0.1', '::1'] : [lower];
  };
  if (a === '::' || b === '::') return true;
  const ipv4ish = (host: string) => !host.includes(':');
  if (WILDCARDS.has(a)) return ipv4ish(b);
  if (WILDCARDS.has(b)) return ipv4ish(a);
  return names(a).some((name) => names(b).includes(name));
}

function checkListeners(config: Config): Problem[] {
  const listeners: Array<{ name: string; listen: string }> = [{ name: 'admin', listen: config.admin.listen }];
  if (config.ingress) listeners.push({ name: 'ingress', listen: config.ingress.listen });
  if (config.egress) listeners.push({ name: 'egress', listen: config.egress.listen });
  const problems: Problem[] = [];
  listeners.forEach((later, index) => {
    const mine = parseListen(later.listen);
    if (mine?.port === 0 && config.workers > 1 && later.name !== 'admin') {
      // Each worker binds for itself: port 0 would give every worker a different port.
      problems.push({ path: [later.name, 'listen'], message: `port 0 cannot be shared by ${config.workers} workers: give a port` });
      return;
    }
    if (!mine || mine.port === 0) return; // port 0: the OS picks a free port, never a clash
    for (const earlier of listeners.slice(0, index)) {
      const theirs = parseListen(earlier.listen);
      if (theirs && theirs.port === mine.port && overlaps(theirs.host, mine.host)) {
        problems.push({ path: [later.name, 'listen'], message: `port ${mine.port} is also bound by ${earlier.name}.listen (${earlier.listen})` });
        break;
      }
    }
  });
  return problems;
}

function checkUpstreams(config: Config): Problem[] {
  const problems: Problem[] = [];
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    const schemeOf = (url: string) => new URL(url).protocol;
    const endpoints = upstream.endpoints ?? []; // discovered endpoints all have the one scheme of discovery.dns
    const odd = endpoints.findIndex((url) => schemeOf(url) !== schemeOf(endpoints[0]));
    if (odd !== -1) {
      problems.push({
        path: ['upstreams', name, 'endpoints', odd],
        message: `mixes ${schemeOf(endpoints[0])}// and ${schemeOf(endpoints[odd])}// endpoints (one upstream speaks one protocol; split it in two)`,
      });
    }
  }
  return problems;
}

type AnyRoute = IngressRouteConfig | EgressRouteConfig;

function checkRoutes(listener: 'ingress' | 'egress', routes: readonly AnyRoute[], known: readonly string[] | undefined): Problem[] {
  const problems: Problem[] = [];
  const names = new Map<string, number>();
  routes.forEach((route, index) => {
    const at = (...rest: PathSegment[]): PathSegment[] => [listener, 'routes', index, ...rest];
    // Same default as compile.ts, so a name a user picked cannot clash with a generated one unnoticed.
    const name = route.name ?? `${listener}-${index}`;
    const first = names.get(name);
    if (first === undefined) names.set(name, index);
    else problems.push({ path: route.name === undefined ? at() : at('name'), message: `duplicate route name "${name}" (also ${listener}.routes[${first}])` });

    if (route.upstream !== undefined && known && !known.includes(route.upstream)) {
      const list = known.length > 0 ? `known: ${known.join(', ')}` : 'no upstreams are defined';
      problems.push({ path: at('upstream'), message: `unknown upstream "${route.upstream}" (${list})` });
    }
    if ('static' in route || listener === 'ingress') {
      const served = 'static' in route ? route.static : undefined;
      if (served && route.upstream !== undefined) problems.push({ path: at('static'), message: 'a route has either upstream or static, not both' });
      if (!served && route.upstream === undefined) problems.push({ path: at(), message: 'route needs an upstream or a static block' });
      if (served) {
        const problem = directoryProblem(served.root);
        if (problem) problems.push({ path: at('static', 'root'), message: `static root ${served.root} ${problem}` });
      }
    }
    const strip = route.rewrite?.stripPrefix;
    if (strip !== undefined) {
      const path = route.match.path;
      // With only pathRegex the proxy strips when the prefix is there; a plain prefix match must guarantee it.
      if (path === undefined ? route.match.pathRegex === undefined : !path.startsWith(strip)) {
        const why = path === undefined ? 'the route has no match.path' : `match.path "${path}" does not start with it`;
        problems.push({ path: at('rewrite', 'stripPrefix'), message: `stripPrefix "${strip}" can never apply: ${why}` });
      }
    }
  });
  return problems;
}

function checkApp(config: Config): Problem[] {
  const app = config.app;
  if (!app) return [];
  const problems: Problem[] = [];
  const problem = directoryProblem(app.cwd);
  if (problem) problems.push({ path: ['app', 'cwd'], message: `${app.cwd} ${problem}` });
  if (app.ready && !/^https?:$/.test(new URL(app.ready.url).protocol)) {
    problems.push({ path: ['app', 'ready', 'url'], message: `must be an http:// or https:// URL, got "${app.ready.url}"` });
  }
  return problems;
}

function directoryProblem(path: string): string | undefined {
  try {
    return statSync(path).isDirectory() ? undefined : 'is not a directory';
  } catch (error) {
    return errnoText(error);
  }
}
