/**
 * WebSocket upgrades, handed to http-proxy once the route allows them. The
 * request head gets the same treatment as a proxied request (request id, Via,
 * X-Forwarded-*, the route's header rules); one access-log line is written
 * when the upgraded connection closes.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import type { CompiledRoute } from '../config/compile.ts';
import type { UpstreamState } from '../upstream/registry.ts';
import { Exchange } from '../observe/exchange.ts';
import { ProxyError, fromUpstreamError } from '../proxy/errors.ts';
import { VIA_TOKEN, requestIdOf } from '../proxy/headers.ts';
import { rewritePath } from '../proxy/proxy.ts';
import { pathOf } from '../proxy/route.ts';
import { writeRawError } from '../net/raw-answer.ts';

export class WebSocketForwarder {
  readonly #proxy = httpProxy.createProxyServer({ ws: true, xfwd: true, changeOrigin: false });
  readonly #exchanges = new WeakMap<IncomingMessage, Exchange>();
  /** Upgraded upstream sockets, until http-proxy has piped them ('open'). */
  readonly #upgraded = new WeakMap<Duplex, { readonly exchange: Exchange; readonly client: Duplex }>();

  constructor() {
    this.#proxy.on('proxyReqWs', (proxyReq, req, client) => {
      const exchange = this.#exchanges.get(req);
      if (!exchange) return;
      const started = performance.now();
      proxyReq.once('upgrade', (_res: IncomingMessage, upstreamSocket: Duplex) => {
        exchange.status = 101;
        exchange.upstreamHeaderMs = performance.now() - started;
        this.#upgraded.set(upstreamSocket, { exchange, client });
      });
      // The upstream refused the upgrade with a plain answer ('response' instead of 'upgrade'): http-proxy passes it on.
      proxyReq.once('response', (res: IncomingMessage) => {
        exchange.status = res.statusCode ?? 0;
        exchange.upstreamHeaderMs = performance.now() - started;
        res.on('data', (chunk: Buffer) => {
          exchange.bytesOut += chunk.length;
        });
      });
    });
    // Frame bytes both ways, counted once http-proxy has piped the sockets: a 'data' listener
    // added on 'upgrade' would start the upstream socket flowing, and the first frames (which
    // http-proxy puts back with unshift() after that event) would go to the counter alone.
    this.#proxy.on('open', (upstreamSocket: Duplex) => {
      const upgraded = this.#upgraded.get(upstreamSocket);
      if (!upgraded) return;
      const { exchange, client } = upgraded;
      client.on('data', (chunk: Buffer) => {
        exchange.bytesIn += chunk.length;
      });
      upstreamSocket.on('data', (chunk: Buffer) => {
        exchange.bytesOut += chunk.length;
      });
    });
  }

  /** Answers an upgrade that no route allows (or whose route's policies refuse it), with its access line. */
  refuse(req: IncomingMessage, socket: Duplex, error: ProxyError, accessLogOn: boolean, headers?: Record<string, string>, route = ''): void {
    const exchange = this.#exchangeOf(req, accessLogOn);
    exchange.route = route;
    exchange.answeredRaw(error, writeRawError(socket, error, { ...headers, 'x-request-id': exchange.reqId }));
    exchange.finish();
  }

  #exchangeOf(req: IncomingMessage, accessLogOn: boolean): Exchange {
    const exchange = new Exchange('ingress', requestIdOf(req.headers), req.method ?? 'GET', req.headers.host ?? '', pathOf(req.url ?? '/'), accessLogOn);
    exchange.noteClient(req);
    return exchange;
  }

  forward(req: IncomingMessage, socket: Duplex, head: Buffer, route: CompiledRoute, upstream: UpstreamState, accessLogOn: boolean): void {
    const exchange = this.#exchangeOf(req, accessLogOn);
    exchange.route = route.name;
    exchange.setUpstream(upstream);
    exchange.attempts = 1;
    const endpoint = upstream.pick();
    this.#exchanges.set(req, exchange);
    socket.once('close', () => {
      if (exchange.status === 0) exchange.status = 499;
      exchange.finish();
    });
    if (!endpoint) {
      const error = new ProxyError('no_healthy_endpoint');
      exchange.answeredRaw(error, writeRawError(socket, error, { 'x-request-id': exchange.reqId }));
      return;
    }
    exchange.endpoint = endpoint.shownAuthority;

    const headers = req.headers;
    for (const name of route.requestHeaders?.remove ?? []) delete headers[name];
    for (const [name, value] of route.requestHeaders?.add ?? []) headers[name] = value;
    headers['x-request-id'] = exchange.reqId;
    headers.via = headers.via ? `${headers.via}, ${VIA_TOKEN}` : VIA_TOKEN;
    req.url = rewritePath(req.url ?? '/', route);

    const tls = upstream.config.tls;
    endpoint.inFlight++;
    socket.once('close', () => endpoint.inFlight--);
    this.#proxy.ws(
      req,
      socket,
      head,
      {
        target: endpoint.origin,
        secure: !tls?.insecureSkipVerify,
      },
      (err: Error) => {
        // Called before http-proxy ends the socket: the client still gets our answer.
        const error = fromUpstreamError(err);
        if (exchange.status === 0) exchange.answeredRaw(error, writeRawError(socket, error, { 'x-request-id': exchange.reqId }));
      },
    );
  }
}
