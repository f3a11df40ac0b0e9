/**
 * The ingress listener: the sidecar in front of the app. A request takes one
 * snapshot at entry, finds its route (first match), and is served by a static
 * route or proxied to the route's upstream, whether it came over HTTP/1.1 or
 * as an HTTP/2 stream (src/h2/). WebSocket upgrades are relayed
 * (websocket.ts) on routes that allow them.
 */
import type { IncomingMessage } from 'node:http';
import type { ClientRequest, ClientResponse, ObservedClientResponse } from '../net/client.ts';
import type { Duplex } from 'node:stream';
import type { CompiledRoute, ListenerSnapshot } from '../config/compile.ts';
import type { ConfigStore } from '../config/store.ts';
import type { UpstreamRegistry } from '../upstream/registry.ts';
import { Exchange } from '../observe/exchange.ts';
import { ProxyError } from '../core/errors.ts';
import { refuse } from '../net/error-answer.ts';
import { requestIdOf } from '../proxy/headers.ts';
import { forwardRequest, rewritePath, type FlightEnd } from '../proxy/proxy.ts';
import { absoluteToOrigin, findRoute, pathOf, splitHost, type RouteInput } from '../proxy/route.ts';
import { normalizeTarget } from '../net/normalize-path.ts';
import { headProblem } from '../net/request-head.ts';
import { Listener } from '../net/listener.ts';
import { clientErrorHandler } from '../net/raw-answer.ts';
import type { SecureFront } from '../net/listener.ts';
import { StaticHandlers } from './static-routes.ts';
import { forwardWebSocket } from './websocket.ts';
import { isWebSocketUpgrade, refuseUpgrade } from '../upgrade/relay.ts';
import { log } from '../observe/log.ts';
import { answerRefusal, type Admission } from '../policy/chain.ts';
import type { PolicyState } from '../policy/state.ts';
import { traceContextOf } from '../tracing/context.ts';

/** Longest request-target we accept (NGINX's large_client_header_buffers default is 8k). */
const MAX_URI_LENGTH = 8 * 1024;

export interface IngressDeps {
  readonly store: ConfigStore;
  readonly registry: UpstreamRegistry;
  /** Answers 503 app_not_ready while the supervised app is starting. */
  readonly appReady: () => boolean;
  /** With `ingress.tls`: the certificates (src/tls/listener-tls.ts); the listener then speaks HTTPS only. */
  readonly tls?: SecureFront;
  /** Rate limit buckets, kept across reloads. */
  readonly policies: PolicyState;
}

/** A bug, not a fault of the client or the upstream: logged, and answered 500 when the head is not sent yet. */
function failed(res: ClientResponse, exchange: Exchange, err: unknown): void {
  log.error({ err, reqId: exchange.reqId }, 'ingress request failed unexpectedly');
  refuse(res, exchange, new ProxyError('internal_error'));
}

/** How every proxied ingress request ends: nothing to do when it is over, a 500 when the sidecar failed. */
const INGRESS_FLIGHTS: FlightEnd = {
  flightEnded: () => undefined,
  flightCrashed: (err, res, exchange) => failed(res, exchange, err),
};

export class IngressServer {
  readonly listener: Listener;
  readonly #deps: IngressDeps;
  readonly #statics = new StaticHandlers();

  constructor(deps: IngressDeps, settings: ListenerSnapshot['settings']) {
    this.#deps = deps;
    this.listener = new Listener('ingress', settings, {
      request: (req, res) => this.#onRequest(req, res),
      upgrade: (req, socket, head) => this.#onUpgrade(req, socket, head),
      clientError: clientErrorHandler('ingress', () => deps.store.current().config.log.access),
      headRecord: { listener: 'ingress', accessLog: () => deps.store.current().config.log.access },
      // HTTP/2 streams (src/h2/) are requests like any other from here on.
      h2: (req, res) => this.#onRequest(req, res),
    }, deps.tls);
    deps.store.onSwap((next) => this.#statics.retain(next));
  }

  #onRequest(req: ClientRequest, res: ObservedClientResponse): void {
    const snapshot = this.#deps.store.current();
    const ingress = snapshot.ingress;
    const raw = req.url ?? '/';
    const hostHeader = req.headers.host;
    const hostInfo = splitHost(hostHeader, ingress?.port ?? 80);
    const target = ingress && hostInfo ? requestTarget(raw, hostHeader!, ingress) : undefined;
    // The access log's path is the one routed: normalised, before any rewrite.
    const path = pathOf(typeof target === 'string' ? target : raw);
    const exchange = new Exchange('ingress', requestIdOf(req.headers), req.method ?? 'GET', hostInfo?.host ?? '', path, snapshot.config.log.access);
    res.observer = exchange;
    exchange.protocol = req.httpVersion; // the metrics' protocol label, whether or not the access line is written
    if (snapshot.tracing) exchange.trace = traceContextOf(req.headers.traceparent, snapshot.tracing);

    if (!ingress || !hostInfo) return refuse(res, exchange, new ProxyError(ingress ? 'bad_request' : 'no_route'));
    if (typeof target !== 'string') return refuse(res, exchange, target!);
    // Static routes, rewrites and the upstream all read req.url: they see what was routed.
    if (target !== raw) req.url = target;
    if (!this.#deps.appReady()) return refuse(res, exchange, new ProxyError('app_not_ready'), { 'retry-after': '1' });
    const input: RouteInput = { method: exchange.method, host: hostInfo.host, port: hostInfo.port, path, headers: req.headers };
    this.#route(req, res, ingress, input, exchange, 0);
  }

  /**
   * First matching route from `from` on; a static miss with fallthrough goes
   * on to the next match. Not async: a hot static file is answered before
   * this returns, without a promise.
   */
  #route(req: ClientRequest, res: ClientResponse, ingress: ListenerSnapshot, input: RouteInput, exchange: Exchange, from: number): void {
    let pending: 'served' | Promise<'served' | 'miss'>;
    let index: number;
    try {
      index = findRoute(ingress.routes, input, from);
      if (index === -1) return refuse(res, exchange, new ProxyError('no_route'));
      const route: CompiledRoute = ingress.routes[index];
      exchange.route = route.name;
      const admission = route.policies?.admit(req, this.#deps.policies);
      if (admission?.refusal) return answerRefusal(res, exchange, admission.refusal, admission.headers);
      if (route.static) {
        // A file's answers are written by the static handler, which knows nothing of the route's policies: their headers go first.
        if (admission?.headers) for (const [name, value] of Object.entries(admission.headers)) res.setHeader(name, value);
        pending = this.#statics.get(route).handle(req, res, exchange);
      } else {
        pending = this.#proxy(req, res, route, exchange, admission);
      }
    } catch (err) {
      return failed(res, exchange, err);
    }
    if (pending === 'served') return;
    pending.then(
      (result) => {
        if (result === 'miss') this.#route(req, res, ingress, input, exchange, index + 1);
      },
      (err: unknown) => failed(res, exchange, err),
    );
  }

  /** Not async: the flight ends by itself (proxy.ts), and a crash answers 500 through INGRESS_FLIGHTS. */
  #proxy(req: ClientRequest, res: ClientResponse, route: CompiledRoute, exchange: Exchange, admission: Admission | undefined): 'served' {
    const upstream = route.upstream === undefined ? undefined : this.#deps.registry.get(route.upstream);
    if (!upstream) {
      // Only possible when a reload removed the upstream while this request was queued.
      refuse(res, exchange, new ProxyError('no_healthy_endpoint', `upstream "${route.upstream}" is gone`));
      return 'served';
    }
    const target = {
      upstream,
      path: rewritePath(req.url ?? '/', route),
      host: req.headers.host,
      originalHost: req.headers.host,
    };
    forwardRequest(req, res, route, target, exchange, admission, INGRESS_FLIGHTS);
    return 'served';
  }

  /**
   * A WebSocket upgrade is routed like a request: its head checked
   * (net/request-head.ts), its path normalised, then matched, rewritten and
   * forwarded as normalised.
   */
  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const snapshot = this.#deps.store.current();
    const ingress = snapshot.ingress;
    const raw = req.url ?? '/';
    const hostHeader = req.headers.host;
    const hostInfo = splitHost(hostHeader, ingress?.port ?? 80);
    const target = ingress && hostInfo ? requestTarget(raw, hostHeader!, ingress) : undefined;
    const exchange = new Exchange('ingress', requestIdOf(req.headers), req.method ?? 'GET', hostInfo?.host ?? '', pathOf(typeof target === 'string' ? target : raw), snapshot.config.log.access);
    exchange.noteClient(req);
    const problem = headProblem(req, true);
    if (problem) return refuseUpgrade(socket, exchange, problem);
    if (!ingress || !hostInfo) return refuseUpgrade(socket, exchange, new ProxyError(ingress ? 'bad_request' : 'no_route'));
    if (typeof target !== 'string') return refuseUpgrade(socket, exchange, target ?? new ProxyError('bad_request'));
    // The rewrite and http-proxy read req.url: they see what was routed.
    if (target !== raw) req.url = target;
    // An upgrade is a request of the app like any other: not relayed before the app is ready.
    if (!this.#deps.appReady()) return refuseUpgrade(socket, exchange, new ProxyError('app_not_ready'), { 'retry-after': '1' });
    const input: RouteInput = { method: exchange.method, host: hostInfo.host, port: hostInfo.port, path: exchange.path, headers: req.headers };
    const index = findRoute(ingress.routes, input);
    const route = index === -1 ? undefined : ingress.routes[index];
    const upstream = route?.upstream === undefined ? undefined : this.#deps.registry.get(route.upstream);
    if (!route || !route.websocket || !upstream) {
      refuseUpgrade(socket, exchange, new ProxyError('no_route', route ? `route "${route.name}" does not allow WebSocket upgrades` : undefined));
      return;
    }
    if (!isWebSocketUpgrade(req)) {
      exchange.route = route.name;
      refuseUpgrade(socket, exchange, new ProxyError('bad_request', `only WebSocket upgrades are relayed (GET with Upgrade: websocket), not ${JSON.stringify(req.headers.upgrade ?? '')}`));
      return;
    }
    // An upgrade is one request of its route: its rate limit counts it.
    const admission = route.policies?.admit(req, this.#deps.policies);
    if (admission?.refusal) {
      exchange.route = route.name;
      refuseUpgrade(socket, exchange, admission.refusal, admission.headers);
      return;
    }
    this.listener.track(socket);
    forwardWebSocket(req, socket, head, route, upstream, exchange);
  }

  close(deadlineMs: number): Promise<void> {
    this.#statics.closeAll();
    return this.listener.close(deadlineMs);
  }
}

/**
 * The origin-form target a request is routed on: an absolute-form target
 * (RFC 9112 3.2.2) taken down to its path when its authority is the Host's,
 * then normalised (net/normalize-path.ts). The same string when nothing
 * changes; a ProxyError when the request cannot be routed.
 */
function requestTarget(raw: string, hostHeader: string, ingress: ListenerSnapshot): string | ProxyError {
  if (raw.length > MAX_URI_LENGTH) return new ProxyError('uri_too_long');
  const origin = raw.startsWith('/') ? raw : absoluteToOrigin(raw, hostHeader);
  if (origin === undefined) return new ProxyError('bad_request', 'the request target is neither a path nor an absolute URL of the Host');
  const normalized = normalizeTarget(origin, ingress.paths);
  return typeof normalized === 'string' ? normalized : new ProxyError('bad_request', normalized.reason);
}
