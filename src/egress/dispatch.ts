/**
 * One egress HTTP request, wherever it came from (absolute-form on the egress
 * port, origin-form with a Host, or HTTP carried inside a CONNECT tunnel):
 * authenticate, refuse loops, pick the first route for the destination, and
 * hand it to `proxyRequest` — a configured upstream for a logical name, or the
 * destination itself (a pooled pass-through) for a route without `upstream:`.
 * WebSocket upgrades (websocket.ts) pass the same checks (`admit`, `target`).
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
import { ProxyError } from '../core/errors.ts';
import { refuse } from '../net/error-answer.ts';
import { carriesOwnVia, requestIdOf } from '../proxy/headers.ts';
import { proxyRequest, rewritePath, type ProxyTarget } from '../proxy/proxy.ts';
import { findRoute, pathOf } from '../proxy/route.ts';
import { normalizeTarget, type PathRefusal } from '../net/normalize-path.ts';
import { PROXY_AUTHENTICATE, proxyAuthorized } from './auth.ts';
import type { DestinationLease, Destinations } from './destinations.ts';
import { addressProblem, reachOf, rulesFor, type OwnAddress } from './policy.ts';
import { authorityOf, type Destination } from './target.ts';
import { answerRefusal } from '../policy/chain.ts';
import type { PolicyState } from '../policy/state.ts';

export interface EgressDeps {
  readonly store: ConfigStore;
  readonly registry: UpstreamRegistry;
  /** The sidecar's bound listeners (loop check), read at check time. */
  readonly ownAddresses: () => readonly OwnAddress[];
  /** Rate limit buckets, kept across reloads. */
  readonly policies: PolicyState;
}

export interface DispatchOptions {
  /** The CONNECT that carries this request was already authenticated. */
  readonly authenticated: boolean;
  /** Close the client connection after this response (shutdown under way). */
  readonly closeAfter: boolean;
}

export const LOOP_MESSAGE = 'request loop: this request already went through this sidecar';

/** An egress exchange as it starts (EgressDispatcher.exchangeFor). */
export interface EgressExchange {
  readonly exchange: Exchange;
  /** The destination's path and query normalised; why it cannot be; undefined without a destination or egress. */
  readonly path: string | PathRefusal | undefined;
}

/** An exchange that passed the checks (EgressDispatcher.admit): its route, and where it goes. */
export interface Admitted {
  readonly index: number;
  /** The destination with the normalised path. */
  readonly dest: Destination;
}

/** Where an admitted egress exchange goes (EgressDispatcher.target). */
export interface EgressTarget {
  readonly target: ProxyTarget;
  /** A pass-through destination's lease: release it once the exchange is over. */
  readonly lease: DestinationLease | undefined;
}

/** The extra headers of a refusal: a 407 says how to authenticate. */
export function refusalHeaders(error: ProxyError): Record<string, string> | undefined {
  return error.code === 'proxy_auth_required' ? PROXY_AUTHENTICATE : undefined;
}

export class EgressDispatcher {
  readonly #deps: EgressDeps;
  readonly #destinations: Destinations;

  constructor(deps: EgressDeps, destinations: Destinations) {
    this.#deps = deps;
    this.#destinations = destinations;
  }

  /**
   * The record of one egress exchange to `dest`, for its access line and
   * metrics, with the destination's path normalised: every request form is
   * matched and forwarded on that path (net/normalize-path.ts).
   */
  exchangeFor(req: IncomingMessage, dest: Destination | undefined, snapshot: Snapshot): EgressExchange {
    const egress = snapshot.egress;
    const path = dest && egress ? normalizeTarget(dest.path, egress.paths) : undefined;
    const exchange = new Exchange(
      'egress',
      requestIdOf(req.headers),
      req.method ?? 'GET',
      dest?.host ?? '',
      pathOf(typeof path === 'string' ? path : dest?.path ?? req.url ?? ''),
      snapshot.config.log.access,
    );
    exchange.protocol = req.httpVersion; // the metrics' protocol label, whether or not the access line is written
    return { exchange, path };
  }

  /**
   * Serves one request to `dest` (undefined = the target could not be parsed:
   * 400). Takes the snapshot once, here, and keeps it to the end.
   */
  handle(req: IncomingMessage, res: ObservedResponse, dest: Destination | undefined, options: DispatchOptions): void {
    const snapshot = this.#deps.store.current();
    const started = this.exchangeFor(req, dest, snapshot);
    const { exchange } = started;
    if (options.closeAfter) res.setHeader('connection', 'close');
    res.observer = exchange;
    if (snapshot.tracing) exchange.trace = traceContextOf(req.headers.traceparent, snapshot.tracing);

    const admitted = this.admit(snapshot, req, dest, started, options.authenticated);
    if (admitted instanceof ProxyError) return refuse(res, exchange, admitted, refusalHeaders(admitted));
    this.#forward(req, res, snapshot, admitted.index, admitted.dest, exchange).catch((err: unknown) => {
      log.error({ err, reqId: exchange.reqId }, 'egress request failed unexpectedly');
      refuse(res, exchange, new ProxyError('internal_error'));
    });
  }

  /**
   * The checks every egress exchange passes, requests and WebSocket upgrades
   * alike: a destination, authentication, the loop guard, a path that
   * normalises, and the first route for it (none: 403). The route's index and
   * the destination with the normalised path, or the refusal.
   */
  admit(snapshot: Snapshot, req: IncomingMessage, dest: Destination | undefined, started: EgressExchange, authenticated: boolean): Admitted | ProxyError {
    const egress = snapshot.egress;
    if (!egress || !dest) return new ProxyError(egress ? 'bad_request' : 'destination_denied');
    if (!authenticated && !proxyAuthorized(req.headers['proxy-authorization'], snapshot.config.egress?.auth)) {
      return new ProxyError('proxy_auth_required');
    }
    if (carriesOwnVia(req.headers)) return new ProxyError('destination_denied', LOOP_MESSAGE);
    const { exchange, path } = started;
    if (typeof path !== 'string') return new ProxyError('bad_request', path?.reason);

    const input = { method: exchange.method, host: dest.host, port: dest.port, path: exchange.path, headers: req.headers };
    const index = findRoute(egress.routes, input);
    if (index === -1) return new ProxyError('destination_denied');
    return { index, dest: path === dest.path ? dest : { ...dest, path } };
  }

  /**
   * Where the exchange on route `index` goes: for a logical name, the
   * upstream's endpoints with their own authority (or TLS name) as Host; for a
   * route without `upstream:`, the destination itself, a pooled pass-through
   * leased for this exchange, with the Host rebuilt from the target (RFC 9112
   * 3.2.2: what the client put in Host is ignored). An IP literal is checked
   * here; a name on every new connection (policy.checkedLookup).
   */
  target(snapshot: Snapshot, index: number, dest: Destination): EgressTarget | ProxyError {
    const route = snapshot.egress!.routes[index];
    const path = rewritePath(dest.path, route);
    const asked = authorityOf(dest.scheme, dest.host, dest.port);

    if (route.upstream !== undefined) {
      const upstream = this.#deps.registry.get(route.upstream);
      if (!upstream) return new ProxyError('no_healthy_endpoint', `upstream "${route.upstream}" is gone`);
      return { target: { upstream, path, host: upstream.config.tls?.serverName, originalHost: asked }, lease: undefined };
    }

    const rules = rulesFor(route, this.#deps.ownAddresses);
    // An IP literal is never looked up, so it is checked here; a name is checked on every new connection (policy.checkedLookup).
    if (isIP(dest.host) !== 0) {
      const problem = addressProblem(dest.host, dest.port, rules);
      if (problem) return new ProxyError('destination_denied', problem);
    }
    const lease = this.#destinations.acquire({
      route: route.name,
      scheme: dest.scheme,
      host: dest.host,
      port: dest.port,
      connectTimeout: route.connectTimeout,
      reach: reachOf(route),
    });
    if (!lease) return new ProxyError('overloaded', 'too many egress destinations in use');
    return { target: { upstream: lease.state, path, host: asked, originalHost: undefined }, lease };
  }

  async #forward(req: IncomingMessage, res: ServerResponse, snapshot: Snapshot, index: number, dest: Destination, exchange: Exchange): Promise<void> {
    const route = snapshot.egress!.routes[index];
    exchange.route = route.name;
    // Before a destination is leased: a refused request costs nothing further.
    const admission = route.policies?.admit(req, this.#deps.policies);
    if (admission?.refusal) return answerRefusal(res, exchange, admission.refusal, admission.headers);
    const chosen = this.target(snapshot, index, dest);
    if (chosen instanceof ProxyError) return refuse(res, exchange, chosen, admission?.headers);
    try {
      await proxyRequest(req, res, route, chosen.target, exchange, admission);
    } finally {
      chosen.lease?.release();
    }
  }
}
