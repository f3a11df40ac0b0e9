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

  constructor() {
    this.#proxy.on('proxyReqWs', (proxyReq, req) => {
      proxyReq.once('upgrade', () => {
        const exchange = this.#exchanges.get(req);
        if (exchange) exchange.status = 101;
      });
    });
  }

  refuse(socket: Duplex, error: ProxyError): void {
    writeRawError(socket, error);
  }

  forward(req: IncomingMessage, socket: Duplex, head: Buffer, route: CompiledRoute, upstream: UpstreamState, accessLogOn: boolean): void {
    const exchange = new Exchange('ingress', requestIdOf(req.headers), req.method ?? 'GET', req.headers.host ?? '', pathOf(req.url ?? '/'), accessLogOn);
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
      exchange.status = error.status;
      exchange.error = error.code;
      this.refuse(socket, error);
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
        if (exchange.status === 0) {
          exchange.status = error.status;
          exchange.error = error.code;
          writeRawError(socket, error);
        }
      },
    );
  }
}
