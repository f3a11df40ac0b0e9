/**
 * One egress HTTP request, wherever it came from (absolute-form on the egress
 * port, origin-form with a Host, or HTTP carried inside a CONNECT tunnel):
 * authenticate, refuse loops, pick the first route for the destination, and
 * hand it to `proxyRequest` — a configured upstream for a logical name, or the
 * destination itself (a pooled pass-through) for a route without `upstream:`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ObservedResponse } from '../net/observed-response.ts';
import { isIP } from 'node:net';
import type { Snapshot } from '../config/compile.ts';
import type { ConfigStore } from '../config/store.ts';
import type { UpstreamRegistry } from '../upstream/registry.ts';
import { Exchange } from '../observe/exchange.ts';
import { log } from '../observe/log.ts';
import { traceContextOf } from '../tracing/context.ts';
import { ProxyError, refuse } from '../proxy/errors.ts';
import { carriesOwnVia, requestIdOf } from '../proxy/headers.ts';
import { proxyRequest, rewritePath } from '../proxy/proxy.ts';
import { findRoute, pathOf } from '../proxy/route.ts';
import { normalizeTarget } from '../net/normalize-path.ts';
import { PROXY_AUTHENTICATE, proxyAuthorized } from './auth.ts';
import type { Destinations } from './destinations.ts';
import { addressProblem, reachOf, rulesFor, type OwnAddress } from './policy.ts';
import { authorityOf, type Destination } from './target.ts';

export interface EgressDeps {
  readonly store: ConfigStore;
  readonly registry: UpstreamRegistry;
  /** The sidecar's bound listeners (loop check), read at check time. */
  readonly ownAddresses: () => readonly OwnAddress[];
}

export interface DispatchOptions {
  /** The CONNECT that carries this request was already authenticated. */
  readonly authenticated: boolean;
  /** Close the client connection after this response (shutdown under way). */
  readonly closeAfter: boolean;
}

export const LOOP_MESSAGE = 'request loop: this request already went through this sidecar';

export class EgressDispatcher {
  readonly #deps: EgressDeps;
  readonly #destinations: Destinations;

  constructor(deps: EgressDeps, destinations: Destinations) {
    this.#deps = deps;
    this.#destinations = destinations;
  }

  /**
   * Serves one request to `dest` (undefined = the target could not be parsed:
   * 400). Takes the snapshot once, here, and keeps it to the end.
   */
  handle(req: IncomingMessage, res: ObservedResponse, dest: Destination | undefined, options: DispatchOptions): void {
    const snapshot = this.#deps.store.current();
    const egress = snapshot.egress;
    // Every request form is matched on the path it is forwarded with: normalised (net/normalize-path.ts).
    const target = dest && egress ? normalizeTarget(dest.path, egress.paths) : undefined;
    const exchange = new Exchange(
      'egress',
      requestIdOf(req.headers),
      req.method ?? 'GET',
      dest?.host ?? '',
      pathOf(typeof target === 'string' ? target : dest?.path ?? req.url ?? ''),
      snapshot.config.log.access,
    );
    if (options.closeAfter) res.setHeader('connection', 'close');
    res.observer = exchange;
    if (snapshot.tracing) exchange.trace = traceContextOf(req.headers.traceparent, snapshot.tracing);

    if (!egress || !dest) return refuse(res, exchange, new ProxyError(egress ? 'bad_request' : 'destination_denied'));
    if (!options.authenticated && !proxyAuthorized(req.headers['proxy-authorization'], snapshot.config.egress?.auth)) {
      return refuse(res, exchange, new ProxyError('proxy_auth_required'), PROXY_AUTHENTICATE);
    }
    if (carriesOwnVia(req.headers)) return refuse(res, exchange, new ProxyError('destination_denied', LOOP_MESSAGE));
    if (typeof target !== 'string') return refuse(res, exchange, new ProxyError('bad_request', target?.reason));

    const input = { method: exchange.method, host: dest.host, port: dest.port, path: exchange.path, headers: req.headers };
    const index = findRoute(egress.routes, input);
    if (index === -1) return refuse(res, exchange, new ProxyError('destination_denied'));
    const routed = target === dest.path ? dest : { ...dest, path: target };
    this.#forward(req, res, snapshot, index, routed, exchange).catch((err: unknown) => {
      log.error({ err, reqId: exchange.reqId }, 'egress request failed unexpectedly');
      refuse(res, exchange, new ProxyError('internal_error'));
    });
  }

  async #forward(req: IncomingMessage, res: ServerResponse, snapshot: Snapshot, index: number, dest: Destination, exchange: Exchange): Promise<void> {
    const route = snapshot.egress!.routes[index];
    exchange.route = route.name;
    const path = rewritePath(dest.path, route);
    const asked = authorityOf(dest.scheme, dest.host, dest.port);

    if (route.upstream !== undefined) {
      // A logical name: the upstream's endpoints get the request, with their own authority (or TLS name) as Host.
      const upstream = this.#deps.registry.get(route.upstream);
      if (!upstream) return refuse(res, exchange, new ProxyError('no_healthy_endpoint', `upstream "${route.upstream}" is gone`));
      await proxyRequest(req, res, route, { upstream, path, host: upstream.config.tls?.serverName, originalHost: asked }, exchange);
      return;
    }

    const rules = rulesFor(route, this.#deps.ownAddresses);
    // An IP literal is never looked up, so it is checked here; a name is checked on every new connection (policy.checkedLookup).
    if (isIP(dest.host) !== 0) {
      const problem = addressProblem(dest.host, dest.port, rules);
      if (problem) return refuse(res, exchange, new ProxyError('destination_denied', problem));
    }
    const lease = this.#destinations.acquire({
      route: route.name,
      scheme: dest.scheme,
      host: dest.host,
      port: dest.port,
      connectTimeout: route.connectTimeout,
      reach: reachOf(route),
    });
    if (!lease) return refuse(res, exchange, new ProxyError('overloaded', 'too many egress destinations in use'));
    try {
      // RFC 9112 3.2.2: the Host sent on is rebuilt from the target; what the client put in Host is ignored.
      await proxyRequest(req, res, route, { upstream: lease.state, path, host: asked, originalHost: undefined }, exchange);
    } finally {
      lease.release();
    }
  }
}
