/**
 * A WebSocket upgrade through the sidecar, shared by ingress and egress (the
 * upgrade analogue of proxy/proxy.ts's proxyRequest). The request head is
 * rebuilt like a proxied request's (headers.ts: hop-by-hop headers go, with
 * Connection / Upgrade put back; request id, Via, X-Forwarded-*, the route's
 * header rules), and the one try is held on the upstream (upstream/held.ts:
 * breaker, maxConcurrent, connections, in-flight, ejection). Then:
 *
 * - a 101: the upstream's 101 head goes to the client (with the route's
 *   response header rules) and bytes flow both ways, with backpressure, until
 *   either side closes;
 * - any other answer: relayed to the client, then the connection closes;
 * - no answer: the sidecar's own error (502, 504, 503, ...), as for a request.
 *
 * One access line when the client's connection closes, with the bytes both
 * ways after the upgrade (`bytesIn` = client to upstream).
 */
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { LookupFunction, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { CompiledRoute, HeaderRules } from '../config/compile.ts';
import type { Exchange } from '../observe/exchange.ts';
import { log } from '../observe/log.ts';
import { ProxyError } from '../proxy/errors.ts';
import { clientResponseHeaders } from '../proxy/headers.ts';
import { tryHeaders, type ProxyTarget } from '../proxy/proxy.ts';
import { writeRawError } from '../net/raw-answer.ts';
import { UpstreamHold, type TryVerdict } from '../upstream/held.ts';
import { requestUpgrade, type PendingUpgrade, type UpgradeOutcome } from './request.ts';

export interface UpgradeTarget extends ProxyTarget {
  /** Resolves and checks the host of a pass-through egress destination (policy.checkedLookup). */
  readonly lookup?: LookupFunction;
}

/** True for `GET` with `Upgrade: websocket`: the one upgrade the sidecar relays. */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return req.method === 'GET' && typeof upgrade === 'string' && /^\s*websocket\s*$/i.test(upgrade);
}

/** The breaker's and ejection's view of a try (SPEC "Breaker failures", as proxy.ts judges a request). */
function verdictOf(outcome: UpgradeOutcome): TryVerdict {
  switch (outcome.kind) {
    case 'failed':
      return outcome.error.code === 'destination_denied' ? 'fine' : 'failed';
    case 'answered':
      return (outcome.response.statusCode ?? 0) >= 500 ? 'failed' : 'fine';
    default:
      return 'fine';
  }
}

/**
 * Forwards the upgrade `req` (its client's `socket` and the bytes already
 * read after its head) to `target`. `exchange` is finished when the client's
 * connection closes; `done` (if any) is called then too.
 */
export function proxyUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  route: CompiledRoute,
  target: UpgradeTarget,
  exchange: Exchange,
  done?: () => void,
): void {
  const upstream = target.upstream;
  exchange.setUpstream(upstream);
  const hold = new UpstreamHold();
  let pending: PendingUpgrade | undefined;
  let gone = false;
  socket.on('error', () => socket.destroy());
  socket.once('close', () => {
    gone = true;
    pending?.cancel();
    hold.end();
    if (exchange.status === 0) exchange.status = 499; // the client left before an answer (NGINX's code)
    exchange.finish();
    done?.();
  });

  hold
    .open(upstream, {
      start: (endpoint) => {
        exchange.attempts++;
        exchange.endpoint = endpoint.shownAuthority;
        const headers = tryHeaders(req, target, endpoint, exchange.reqId, route.requestHeaders, true);
        pending = requestUpgrade({
          endpoint,
          path: target.path,
          headers,
          lookup: target.lookup,
          connectTimeout: upstream.config.connectTimeout,
          headTimeout: route.timeout,
        });
        if (gone) pending.cancel();
        const started = performance.now();
        return pending.outcome.then((outcome) => {
          if (outcome.kind !== 'failed') exchange.upstreamHeaderMs = performance.now() - started;
          return outcome;
        });
      },
      verdict: (outcome) => (gone ? 'nothing' : verdictOf(outcome)),
      opened: (outcome) => outcome.kind === 'switched',
    })
    .then(
      ({ value }) => {
        if (value.kind === 'switched') return switched(socket, head, value, route.responseHeaders, exchange);
        if (value.kind === 'answered') return answered(socket, value.response, route.responseHeaders, exchange);
        refuse(socket, value.error, exchange);
      },
      (err: unknown) => {
        if (!(err instanceof ProxyError)) log.error({ err, reqId: exchange.reqId }, 'WebSocket upgrade failed unexpectedly');
        refuse(socket, err instanceof ProxyError ? err : new ProxyError('internal_error'), exchange);
      },
    );
}

/** The sidecar's own answer after the try (nothing when the client already left); the access line comes at the close. */
function refuse(socket: Duplex, error: ProxyError, exchange: Exchange): void {
  if (socket.destroyed) return;
  exchange.answeredRaw(error, writeRawError(socket, error, { 'x-request-id': exchange.reqId }));
}

/** The sidecar's own answer to an upgrade it does not relay (no route, not a WebSocket, ...); the access line is written at once. */
export function refuseUpgrade(socket: Duplex, exchange: Exchange, error: ProxyError, headers?: Record<string, string>): void {
  socket.on('error', () => socket.destroy());
  exchange.answeredRaw(error, writeRawError(socket, error, { 'x-request-id': exchange.reqId, ...headers }));
  exchange.finish();
}

/** A response head for a raw socket, from a flat [name, value, ...] list. */
function headText(status: number, reason: string | undefined, headers: readonly string[]): string {
  let text = `HTTP/1.1 ${status} ${reason || STATUS_CODES[status] || ''}\r\n`;
  for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${text}\r\n`;
}

/**
 * The 101: its head as the upstream sent it (Connection, Upgrade and the
 * Sec-WebSocket-* headers are the handshake), less what the route removes,
 * plus what it adds; then bytes both ways.
 */
function switched(client: Duplex, clientHead: Buffer, outcome: Extract<UpgradeOutcome, { kind: 'switched' }>, rules: HeaderRules | undefined, exchange: Exchange): void {
  const upstream = outcome.socket;
  if (client.destroyed) {
    upstream.destroy();
    return;
  }
  exchange.status = 101;
  const raw = outcome.response.rawHeaders;
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (rules?.remove.has(name) || rules?.add.some(([added]) => added === name)) continue;
    headers.push(raw[i], raw[i + 1]);
  }
  for (const [name, value] of rules?.add ?? []) headers.push(name, value);
  if (outcome.response.headers['x-request-id'] === undefined) headers.push('x-request-id', exchange.reqId);
  client.write(headText(101, outcome.response.statusMessage, headers));
  relay(client as Socket, upstream, clientHead, outcome.head, exchange);
}

/** Bytes both ways with backpressure (pipe); a FIN is passed on; either side gone for good closes the other. */
function relay(client: Socket, upstream: Socket, clientHead: Buffer, upstreamHead: Buffer, exchange: Exchange): void {
  upstream.on('error', () => client.destroy());
  if (upstreamHead.length > 0) {
    exchange.bytesOut += upstreamHead.length;
    client.write(upstreamHead);
  }
  if (clientHead.length > 0) {
    exchange.bytesIn += clientHead.length;
    upstream.write(clientHead);
  }
  client.on('data', (chunk: Buffer) => (exchange.bytesIn += chunk.length));
  upstream.on('data', (chunk: Buffer) => (exchange.bytesOut += chunk.length));
  upstream.once('close', (hadError) => (hadError ? client.destroy() : client.destroySoon()));
  client.once('close', (hadError) => (hadError ? upstream.destroy() : upstream.destroySoon()));
  client.pipe(upstream);
  upstream.pipe(client);
}

/**
 * Another answer than 101 (the upstream refused the upgrade): passed on like
 * a proxied response, then the connection closes. The body goes as the
 * upstream framed it when it gave a Content-Length, else until the close.
 */
function answered(client: Duplex, response: IncomingMessage, rules: HeaderRules | undefined, exchange: Exchange): void {
  if (client.destroyed) {
    response.destroy();
    return;
  }
  const status = response.statusCode ?? 502;
  exchange.status = status;
  const outgoing = clientResponseHeaders(response.headers as Record<string, string | string[] | undefined>, rules);
  if (outgoing['x-request-id'] === undefined) outgoing['x-request-id'] = exchange.reqId;
  outgoing.connection = 'close';
  const headers: string[] = [];
  for (const [name, value] of Object.entries(outgoing)) {
    for (const one of Array.isArray(value) ? value : [value]) headers.push(name, one);
  }
  client.write(headText(status, response.statusMessage, headers));
  response.on('data', (chunk: Buffer) => (exchange.bytesOut += chunk.length));
  response.on('error', () => client.destroy());
  client.once('close', () => response.destroy());
  response.pipe(client);
}
