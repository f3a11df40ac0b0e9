/**
 * CONNECT. The target is checked against the allow-list (and, for a
 * pass-through route, its resolved addresses against the loop and metadata
 * rules) before `200 Connection Established`. Then the first bytes decide:
 *
 * - a TLS ClientHello (or bytes of some other protocol, or silence: a protocol
 *   where the server speaks first) is a blind tunnel (tunnel.ts); so is the
 *   HTTP/2 connection preface (cleartext h2, what gRPC clients send through
 *   `grpc_proxy` / `http_proxy`): its calls reach the destination as they
 *   are, under the tunnel's route, one access line for the tunnel;
 * - anything that starts like an HTTP request line is HTTP/1.1, served by an
 *   internal HTTP server, and every request on it is routed like an
 *   absolute-form request to the CONNECT's host:port. Node's fetch with
 *   NODE_USE_ENV_PROXY=1 sends `CONNECT host:80` even for http:// URLs; this
 *   is how those calls keep routing, retries, logs and metrics, and why a
 *   CONNECT to port 80 that no route allows is accepted: its requests get
 *   their 403 one by one, which the app can read.
 */
import type { IncomingMessage } from 'node:http';
import { http } from '../net/node-http.ts';
import { ObservedResponse, tellObserver, type ObservedServer } from '../net/observed-response.ts';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { CompiledRoute, Snapshot } from '../config/compile.ts';
import { serverLimits, type Listener } from '../net/listener.ts';
import { Exchange } from '../observe/exchange.ts';
import { log } from '../observe/log.ts';
import { ProxyError } from '../core/errors.ts';
import { carriesOwnVia, requestIdOf } from '../proxy/headers.ts';
import { clientErrorHandler, writeRawError } from '../net/raw-answer.ts';
import { admitHead, upgradeWanted, type HeadRecord } from '../net/request-head.ts';
import { PROXY_AUTHENTICATE, proxyAuthorized } from './auth.ts';
import { LOOP_MESSAGE, type EgressDeps, type EgressDispatcher } from './dispatch.ts';
import { DEFAULT_CONNECT_TIMEOUT_MS } from './destinations.ts';
import { admitConnect, firstAllowing, pinnedLookup, resolveChecked, rulesFor } from './policy.ts';
import { absolutePath, parseAuthority } from './target.ts';
import { openTunnel, type TunnelConnect, type TunnelTarget } from './tunnel.ts';
import type { EgressUpgrades } from './websocket.ts';
import { refusalOf, UpstreamHold } from '../upstream/held.ts';
import { prefaceOf } from '../h2/preface.ts';
import type { EndpointState } from '../upstream/state.ts';

/**
 * How long to wait for the client's first bytes after 200. Clients of
 * client-first protocols (TLS, HTTP) send at once; silence this long means
 * the server is expected to speak first (SSH, SMTP): tunnel blindly.
 */
const PEEK_WAIT_MS = 500;

const ESTABLISHED = 'HTTP/1.1 200 Connection Established\r\n\r\n';

/**
 * A CONNECT to this port that no route allows is accepted all the same, so
 * that the HTTP requests inside get a readable 403 each (see handle()). Other
 * ports carry TLS, where a client shows the CONNECT's own 403.
 */
const DENIED_HTTP_PORT = 80;

type FirstBytes = { readonly kind: 'http' | 'tunnel'; readonly chunk: Buffer | undefined } | { readonly kind: 'gone' };

/**
 * Empty lines a client may send before its first request line (RFC 9112 2.2:
 * a server SHOULD ignore at least one); beyond this many bytes of them, the
 * bytes are not taken for HTTP.
 */
const MAX_LEADING_BLANK = 1024;

/** What the bytes so far are; undefined while they are only empty lines, or the start of the h2 preface (wait for more). */
function classify(seen: Buffer): FirstBytes | undefined {
  const at = seen.findIndex((byte) => byte !== 0x0d && byte !== 0x0a);
  if (at === -1) return seen.length > MAX_LEADING_BLANK ? { kind: 'tunnel', chunk: seen } : undefined;
  // `PRI * HTTP/2.0` starts like a request line, but no HTTP/1.1 server can read what follows it.
  const h2 = at === 0 ? prefaceOf(seen) : 'other';
  if (h2 === undefined) return undefined;
  if (h2 === 'h2') return { kind: 'tunnel', chunk: seen };
  const first = seen[at];
  // 0x16 = TLS handshake record; 'A'..'Z' = the start of a method token. Node's HTTP parser skips the empty lines itself.
  const http = first !== 0x16 && first >= 0x41 && first <= 0x5a;
  return { kind: http ? 'http' : 'tunnel', chunk: seen };
}

/** Waits for the client's first significant bytes through the tunnel and says what they are. */
function peek(socket: Socket, head: Buffer): Promise<FirstBytes> {
  let seen = head;
  const known = head.length > 0 ? classify(head) : undefined;
  if (known) return Promise.resolve(known);
  return new Promise((resolve) => {
    const finish = (result: FirstBytes) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onGone);
      socket.off('close', onGone);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const result = classify(seen);
      if (!result) return;
      socket.pause();
      finish(result);
    };
    const onGone = () => finish({ kind: 'gone' });
    const timer = setTimeout(() => {
      socket.pause();
      finish({ kind: 'tunnel', chunk: seen.length > 0 ? seen : undefined });
    }, PEEK_WAIT_MS);
    socket.on('data', onData);
    socket.once('end', onGone);
    socket.once('close', onGone);
  });
}

/**
 * Limits of the HTTP server inside tunnels: the egress listener's. (A Host
 * header is not required there: the destination is the CONNECT's.)
 */
function innerLimits(snapshot: Snapshot): ReturnType<typeof serverLimits> {
  return serverLimits(snapshot.config.egress);
}

/** Where a tunnel to a configured endpoint connects (its scheme's port when the URL has none). */
function endpointTarget(endpoint: EndpointState, connectTimeout: number): TunnelTarget {
  const url = new URL(endpoint.url);
  const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port, connectTimeout };
}

/** The path of a request inside a tunnel: its destination is the CONNECT's host:port, whatever the request line or Host say. */
function innerPath(url: string): string {
  return url.startsWith('/') ? url : absolutePath(url);
}

/** What an HTTP request inside a tunnel needs to know about its CONNECT. */
interface TunnelContext {
  readonly host: string;
  readonly port: number;
}

export class ConnectHandler {
  readonly #deps: EgressDeps;
  readonly #listener: Listener;
  readonly #dispatcher: EgressDispatcher;
  readonly #upgrades: EgressUpgrades;
  /** Serves HTTP carried inside CONNECT tunnels; it never listens, sockets are handed to it. */
  readonly #inner: ObservedServer;
  readonly #contexts = new WeakMap<Socket, TunnelContext>();
  readonly #headRecord: HeadRecord;
  #draining = false;

  constructor(deps: EgressDeps, listener: Listener, dispatcher: EgressDispatcher, upgrades: EgressUpgrades) {
    this.#deps = deps;
    this.#listener = listener;
    this.#dispatcher = dispatcher;
    this.#upgrades = upgrades;
    this.#inner = http.createServer<typeof IncomingMessage, typeof ObservedResponse>(
      {
        ...innerLimits(deps.store.current()),
        connectionsCheckingInterval: 250,
        requireHostHeader: false,
        insecureHTTPParser: false,
        ServerResponse: ObservedResponse,
        // As on the listeners (net/listener.ts): an `Upgrade: h2c` offer is served as a plain request.
        shouldUpgradeCallback: upgradeWanted,
      },
      (req, res) => {
        res.on('close', tellObserver);
        this.#onInnerRequest(req, res);
      },
    );
    // A reload's new limits apply to the HTTP inside tunnels too (as Listener.setLimits does for the listener).
    deps.store.onSwap((next) => Object.assign(this.#inner, innerLimits(next)));
    this.#inner.on('clientError', clientErrorHandler('egress', () => deps.store.current().config.log.access));
    this.#inner.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onInnerUpgrade(req, socket, head));
    this.#headRecord = { listener: 'egress', accessLog: () => deps.store.current().config.log.access };
    // Node tracks a server's connections (timeouts, closeIdleConnections) from 'listening' on;
    // this server is never bound, so start the tracking by hand.
    this.#inner.emit('listening');
  }

  handle(req: IncomingMessage, duplex: Duplex, head: Buffer): void {
    const socket = duplex as Socket;
    socket.on('error', () => socket.destroy());
    const snapshot = this.#deps.store.current();
    const egress = snapshot.egress;
    const target = parseAuthority(req.url);
    const exchangeFor = () => {
      const exchange = new Exchange('egress', requestIdOf(req.headers), 'CONNECT', target?.host ?? '', '', snapshot.config.log.access);
      exchange.noteClient(req);
      return exchange;
    };
    const refuse = (error: ProxyError, route = '', headers?: Record<string, string>) => {
      const exchange = exchangeFor();
      exchange.route = route;
      exchange.error = error.code;
      exchange.status = error.status;
      exchange.bytesOut += writeRawError(socket, error, headers);
      exchange.finish();
    };

    if (!egress) return refuse(new ProxyError('destination_denied'));
    if (!target) return refuse(new ProxyError('bad_request', `malformed CONNECT target ${JSON.stringify(req.url ?? '')} (write host:port)`));
    if (!proxyAuthorized(req.headers['proxy-authorization'], snapshot.config.egress?.auth)) {
      return refuse(new ProxyError('proxy_auth_required'), '', PROXY_AUTHENTICATE);
    }
    if (carriesOwnVia(req.headers)) return refuse(new ProxyError('destination_denied', LOOP_MESSAGE));
    const established = () => {
      if (!socket.writable) return;
      socket.write(ESTABLISHED);
      peek(socket, head).then((first) => {
        if (first.kind === 'gone') socket.destroy();
        else if (first.kind === 'http') {
          counted?.release?.(); // each request inside is limited on its own
          this.#serveHttp(socket, first.chunk!, target);
        } else this.#tunnel(req, socket, first.chunk, snapshot, target, exchangeFor());
      });
    };
    const first = firstAllowing(egress.routes, target.host, target.port);
    if (first === -1 && target.port !== DENIED_HTTP_PORT) return refuse(new ProxyError('destination_denied'));
    // A tunnel is one request of the route that would carry it blind: its rate limit counts it before 200.
    const blind = firstAllowing(egress.routes, target.host, target.port, true);
    const counted = blind === -1 ? undefined : egress.routes[blind].policies?.admit(req, this.#deps.policies);
    if (counted?.refusal) return refuse(counted.refusal, egress.routes[blind].name, counted.headers);
    this.#listener.track(socket);
    if (first === -1) {
      // Node's fetch (NODE_USE_ENV_PROXY=1) sends http:// URLs through `CONNECT host:80` and shows nothing
      // of a refused CONNECT but "fetch failed": accept, and let each request inside be answered by the
      // routes (403 destination_denied, readable); anything else inside finds no route for a blind tunnel.
      established();
      return;
    }
    const route = egress.routes[first];
    if (route.upstream !== undefined) {
      // A logical name whose upstream would refuse a tunnel (breaker open, maxConcurrent reached, no endpoint)
      // refuses the CONNECT now, while the client can still read why (upstream/held.ts).
      const upstream = this.#deps.registry.get(route.upstream);
      const refusal = upstream ? refusalOf(upstream) : new ProxyError('no_healthy_endpoint', `upstream "${route.upstream}" is gone`);
      if (refusal) return refuse(refusal, route.name);
      established();
      return;
    }
    // A pass-through destination: refuse loops and forbidden addresses now, with a proper status.
    admitConnect(egress.routes, target.host, target.port, this.#deps.ownAddresses).then((admission) => {
      if (admission.error) refuse(admission.error, egress.routes[admission.index]?.name);
      else established();
    });
  }

  /** HTTP inside the tunnel: the peeked bytes go back in front, and the internal server parses. */
  #serveHttp(socket: Socket, chunk: Buffer, target: TunnelContext): void {
    if (log.isLevelEnabled('debug')) log.debug({ host: target.host, port: target.port }, 'CONNECT carries HTTP: each request is routed');
    this.#contexts.set(socket, target);
    socket.unshift(chunk);
    this.#inner.emit('connection', socket);
    socket.resume();
  }

  #onInnerRequest(req: IncomingMessage, res: ObservedResponse): void {
    if (!admitHead(req, res, false, this.#headRecord)) return;
    const context = this.#contexts.get(req.socket);
    const path = innerPath(req.url ?? '/');
    this.#dispatcher.handle(req, res, context && { scheme: 'http', host: context.host, port: context.port, path }, {
      authenticated: true,
      closeAfter: this.#draining,
    });
  }

  /** A WebSocket inside the tunnel: relayed to the CONNECT's host:port like an absolute-form one (the tunnel is tracked already). */
  #onInnerUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const context = this.#contexts.get(req.socket);
    const path = innerPath(req.url ?? '/');
    this.#upgrades.handle(req, socket, head, context && { scheme: 'http', host: context.host, port: context.port, path }, { authenticated: true, requireHost: false });
  }

  /** A blind tunnel on the first route that allows this host:port without looking at a request (policy.firstAllowing). */
  #tunnel(req: IncomingMessage, socket: Socket, first: Buffer | undefined, snapshot: Snapshot, target: TunnelContext, exchange: Exchange): void {
    const egress = snapshot.egress!;
    const idleTimeout = snapshot.config.egress?.tunnelIdleTimeout ?? 0;
    const index = firstAllowing(egress.routes, target.host, target.port, true);
    if (index === -1) {
      // The allow-list let the CONNECT in for HTTP only (routes with a path, methods, headers): no blind tunnel.
      exchange.error = 'destination_denied';
      exchange.status = 403;
      socket.destroy();
      exchange.finish();
      return;
    }
    const route: CompiledRoute = egress.routes[index];
    exchange.route = route.name;
    if (route.upstream !== undefined) {
      const upstream = this.#deps.registry.get(route.upstream);
      if (!upstream) {
        exchange.error = 'no_healthy_endpoint';
        exchange.status = 503;
        socket.destroy();
        exchange.finish();
        return;
      }
      // A logical name: the tunnel goes to one of the upstream's endpoints, and counts with the upstream
      // (breaker, maxConcurrent, connections, in-flight, ejection) like any request to it.
      exchange.setUpstream(upstream);
      const hold = new UpstreamHold();
      const done = () => {
        hold.end();
        exchange.finish();
      };
      const connectTimeout = route.connectTimeout ?? upstream.config.connectTimeout;
      hold
        .open(upstream, {
          start: (endpoint) =>
            new Promise<TunnelConnect>((connected) => openTunnel(socket, endpointTarget(endpoint, connectTimeout), first, idleTimeout, exchange, done, connected)),
          verdict: (outcome) => (outcome === 'failed' ? 'failed' : outcome === 'gone' ? 'nothing' : 'fine'),
          opened: (outcome) => outcome === 'connected',
        })
        .catch((err: unknown) => {
          // Refused before any connect (circuit_open, overloaded, no_healthy_endpoint): after the 200, all the client sees is the close.
          if (!(err instanceof ProxyError)) log.error({ err, reqId: exchange.reqId }, 'CONNECT tunnel failed unexpectedly');
          const error = err instanceof ProxyError ? err : new ProxyError('internal_error');
          exchange.error = error.code;
          exchange.status = error.status;
          socket.destroy();
          done();
        });
      return;
    }
    // A pass-through: check the addresses for this route, then connect to exactly those (no second lookup to rebind).
    const rules = rulesFor(route, this.#deps.ownAddresses);
    resolveChecked(target.host, target.port, rules).then(
      (addresses) => {
        const tunnelTarget: TunnelTarget = {
          host: target.host,
          port: target.port,
          lookup: pinnedLookup(addresses),
          connectTimeout: route.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS,
        };
        openTunnel(socket, tunnelTarget, first, idleTimeout, exchange, () => exchange.finish());
      },
      (err: unknown) => {
        const error = err instanceof ProxyError ? err : new ProxyError('upstream_connect_failed', `cannot resolve ${target.host}`, { cause: err });
        exchange.error = error.code;
        exchange.status = error.status;
        socket.destroy();
        exchange.finish();
      },
    );
  }

  /** Shutdown: idle HTTP connections inside tunnels close now, busy ones after their response. */
  drain(): void {
    this.#draining = true;
    this.#inner.closeIdleConnections();
  }

  close(): void {
    this.#inner.close();
  }
}
