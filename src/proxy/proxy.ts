/**
 * A routed request, from the chosen route to the client's response: pick an
 * endpoint, rebuild the head, stream the body, run the attempt, and answer
 * with the sidecar's own error when nothing came back. Shared by ingress and
 * egress; what differs (Host, path) arrives in `ProxyTarget`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import type { CompiledRoute } from '../config/compile.ts';
import type { Exchange } from '../observe/exchange.ts';
import type { EndpointState, UpstreamState } from '../upstream/registry.ts';
import { ProxyError, sendError } from './errors.ts';
import { startAttempt } from './forward.ts';
import { upstreamRequestHeaders } from './headers.ts';

/** Where and how the request goes. */
export interface ProxyTarget {
  readonly upstream: UpstreamState;
  /** Path and query sent upstream (after rewrite). */
  readonly path: string;
  /** Host header sent upstream; undefined = the endpoint's host:port. */
  readonly host: string | undefined;
  /** Host the client asked for (X-Forwarded-Host). */
  readonly originalHost: string | undefined;
}

/** Counts request body bytes and refuses more than `limit` (0 = no limit). */
class BodyMeter extends Transform {
  readonly #exchange: Exchange;
  readonly #limit: number;

  constructor(exchange: Exchange, limit: number) {
    super();
    this.#exchange = exchange;
    this.#limit = limit;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#exchange.bytesIn += chunk.length;
    if (this.#limit > 0 && this.#exchange.bytesIn > this.#limit) {
      callback(new ProxyError('payload_too_large'));
      return;
    }
    callback(null, chunk);
  }
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return length !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

/**
 * The request body as undici will read it. It is never `req` itself: undici
 * destroys a body stream when an attempt fails, and we still need the client
 * socket to send our error answer.
 */
function requestBody(req: IncomingMessage, exchange: Exchange, limit: number): BodyMeter | null {
  if (!hasBody(req)) return null;
  const meter = new BodyMeter(exchange, limit);
  req.pipe(meter);
  meter.on('error', () => req.unpipe(meter));
  return meter;
}

/** Applies `rewrite.stripPrefix` to a path with query. */
export function rewritePath(url: string, route: CompiledRoute): string {
  const prefix = route.stripPrefix;
  if (!prefix || !url.startsWith(prefix)) return url;
  const rest = url.slice(prefix.length);
  return rest.startsWith('/') ? rest : `/${rest}`;
}

/** Forwards one request to its upstream and writes the answer; resolves when the exchange is over. */
export async function proxyRequest(
  req: IncomingMessage,
  res: ServerResponse,
  route: CompiledRoute,
  target: ProxyTarget,
  exchange: Exchange,
): Promise<void> {
  exchange.upstream = target.upstream.name;

  const declared = Number(req.headers['content-length'] ?? 0);
  if (route.maxBody > 0 && declared > route.maxBody) {
    exchange.error = 'payload_too_large';
    res.shouldKeepAlive = false; // the unread body would otherwise be read and thrown away
    sendError(res, new ProxyError('payload_too_large'));
    return;
  }

  const endpoint: EndpointState = target.upstream.pick();
  exchange.endpoint = endpoint.authority;
  exchange.attempts = 1;
  const headers = upstreamRequestHeaders(
    req.rawHeaders,
    req.headers,
    {
      host: target.host ?? endpoint.authority,
      clientAddress: req.socket.remoteAddress,
      proto: 'http',
      originalHost: target.originalHost,
      requestId: exchange.reqId,
    },
    route.requestHeaders,
  );

  const attempt = startAttempt(res, exchange, {
    endpoint,
    method: req.method ?? 'GET',
    path: target.path,
    headers,
    body: requestBody(req, exchange, route.maxBody),
    headTimeout: route.timeout,
    bodyIdleTimeout: route.idleTimeout,
    responseRules: route.responseHeaders,
  });
  // A client that leaves aborts the upstream request at once.
  const onClientGone = () => {
    if (!res.writableFinished) attempt.cancel(new Error('client closed the connection'));
  };
  res.once('close', onClientGone);
  const outcome = await attempt.outcome;
  res.off('close', onClientGone);

  if (outcome.kind === 'failed') {
    exchange.error = outcome.error.code;
    if (outcome.error.code === 'payload_too_large') res.shouldKeepAlive = false;
    if (!res.destroyed) sendError(res, outcome.error);
  }
}
