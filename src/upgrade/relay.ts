/**
 * A WebSocket upgrade through the sidecar, shared by ingress and egress (the
 * upgrade analogue of proxy/proxy.ts's proxyRequest). The request head is
 * rebuilt like a proxied request's (headers.ts: hop-by-hop headers go, with
 * Connection / Upgrade put back; request id, Via, X-Forwarded-*, the route's
 * header rules), and the one try, made by http-proxy (attempt.ts), is held on
 * the upstream (upstream/held.ts: breaker, maxConcurrent, connections,
 * in-flight, ejection) from the pick of its endpoint until the WebSocket
 * closes. An upstream that refuses the upgrade has its answer passed on; a
 * try with no answer gets the sidecar's own (502, 504, ...), as does an
 * upstream that refuses any try (503).
 *
 * One access line when the client's connection closes, with the bytes both
 * ways after the upgrade (`bytesIn` = client to upstream).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { CompiledRoute } from '../config/compile.ts';
import type { Exchange } from '../observe/exchange.ts';
import { log } from '../observe/log.ts';
import { ProxyError, type ErrorCode } from '../core/errors.ts';
import { tryHeaders, type ProxyTarget } from '../proxy/proxy.ts';
import { writeRawError } from '../net/raw-answer.ts';
import { UpstreamHold, type TryVerdict } from '../upstream/held.ts';
import { startUpgrade, type PendingUpgrade, type UpgradeOutcome } from './attempt.ts';

/** True for `GET` with `Upgrade: websocket`: the one upgrade the sidecar relays (and http-proxy takes). */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return req.method === 'GET' && typeof upgrade === 'string' && upgrade.toLowerCase() === 'websocket';
}

/** No answer for these is the upstream's failure (SPEC "Breaker failures"); others (a refused destination, our own bug) say nothing of it. */
const UPSTREAM_FAILURES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['upstream_connect_failed', 'upstream_reset', 'upstream_timeout', 'upstream_bad_response']);

/** The breaker's and ejection's view of a try, as proxy.ts judges a request's. */
function verdictOf(outcome: UpgradeOutcome): TryVerdict {
  switch (outcome.kind) {
    case 'failed':
      return UPSTREAM_FAILURES.has(outcome.error.code) ? 'failed' : 'nothing';
    case 'answered':
      return outcome.status >= 500 ? 'failed' : 'fine';
    default:
      return 'fine';
  }
}

/** The outcome of a try the client left before it started. */
const LEFT: UpgradeOutcome = { kind: 'failed', error: new ProxyError('upstream_reset', 'the client left before the upgrade was made') };

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
  target: ProxyTarget,
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
        if (gone) return Promise.resolve(LEFT);
        pending = startUpgrade({
          req,
          socket,
          head,
          endpoint,
          path: target.path,
          headers: tryHeaders(req, target, endpoint, exchange.reqId, route, true),
          connectTimeout: upstream.config.connectTimeout,
          headTimeout: route.timeout,
          responseRules: route.responseHeaders,
          exchange,
        });
        return pending.outcome;
      },
      verdict: (outcome) => (gone ? 'nothing' : verdictOf(outcome)),
      opened: (outcome) => outcome.kind === 'switched',
    })
    .then(
      ({ value }) => {
        if (value.kind === 'failed' && value.error.code === 'internal_error') {
          log.error({ err: value.error.cause, reqId: exchange.reqId }, 'WebSocket upgrade failed unexpectedly');
        }
      },
      (err: unknown) => {
        // Refused before any try: circuit_open, overloaded, no_healthy_endpoint.
        if (!(err instanceof ProxyError)) log.error({ err, reqId: exchange.reqId }, 'WebSocket upgrade failed unexpectedly');
        if (socket.destroyed) return;
        const error = err instanceof ProxyError ? err : new ProxyError('internal_error');
        exchange.answeredRaw(error, writeRawError(socket, error, { 'x-request-id': exchange.reqId }));
      },
    );
}

/** The sidecar's own answer to an upgrade it does not relay (no route, not a WebSocket, ...); the access line is written at once. */
export function refuseUpgrade(socket: Duplex, exchange: Exchange, error: ProxyError, headers?: Record<string, string>): void {
  socket.on('error', () => socket.destroy());
  exchange.answeredRaw(error, writeRawError(socket, error, { 'x-request-id': exchange.reqId, ...headers }));
  exchange.finish();
}
