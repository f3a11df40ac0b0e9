/**
 * WebSocket upgrades on ingress: a route with `websocket: true` and an
 * upstream relays them (upgrade/relay.ts: http-proxy, with the upstream's
 * `tls` settings, its breaker, maxConcurrent and in-flight count, as for a
 * request); the path is rewritten and the Host passed on as for a proxied
 * request.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { CompiledRoute } from '../config/compile.ts';
import type { Exchange } from '../observe/exchange.ts';
import { rewritePath } from '../proxy/proxy.ts';
import type { UpstreamState } from '../upstream/state.ts';
import { proxyUpgrade } from '../upgrade/relay.ts';

/** Relays the upgrade `req` on `route` to `upstream`. */
export function forwardWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer, route: CompiledRoute, upstream: UpstreamState, exchange: Exchange): void {
  exchange.route = route.name;
  const target = { upstream, path: rewritePath(req.url ?? '/', route), host: req.headers.host, originalHost: req.headers.host };
  proxyUpgrade(req, socket, head, route, target, exchange);
}
