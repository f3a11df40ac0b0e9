/**
 * WebSocket upgrades through egress: an app's `ws://` client via HTTP_PROXY
 * (absolute-form `GET http://host/ws` with `Upgrade: websocket`), or an
 * Upgrade inside a CONNECT tunnel that carries HTTP. The destination is
 * decided exactly as for any egress request (dispatch.ts): the head checks,
 * authentication, the loop guard, a path that normalises, the first route
 * for it (none: 403 destination_denied), then a logical name's upstream, or
 * the pass-through destination with the
 * same address checks (policy.ts: IP literals here, names on the connection's
 * own lookup). Then the upgrade is relayed (upgrade/relay.ts) with the route's
 * policies and the upstream's accounting.
 *
 * Any route that allows the destination allows its WebSockets (egress routes
 * have no `websocket` key): a CONNECT to the same place could carry them as a
 * blind tunnel anyway.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ConfigStore } from '../config/store.ts';
import type { PolicyState } from '../policy/state.ts';
import { ProxyError } from '../core/errors.ts';
import { isWebSocketUpgrade, proxyUpgrade, refuseUpgrade } from '../upgrade/relay.ts';
import { refusalHeaders, type EgressDispatcher } from './dispatch.ts';
import type { Destination } from './target.ts';
import { headProblem } from '../net/request-head.ts';

export interface UpgradeOptions {
  /** Proxy-Authorization was checked already (the CONNECT that carries it). */
  readonly authenticated: boolean;
  /** An HTTP/1.1 upgrade without Host is 400 (not inside a CONNECT tunnel, whose destination is the tunnel's). */
  readonly requireHost: boolean;
}

export class EgressUpgrades {
  readonly #store: ConfigStore;
  readonly #dispatcher: EgressDispatcher;
  readonly #policies: PolicyState;

  constructor(store: ConfigStore, dispatcher: EgressDispatcher, policies: PolicyState) {
    this.#store = store;
    this.#dispatcher = dispatcher;
    this.#policies = policies;
  }

  /** Relays the upgrade `req` to `dest` (undefined = the target could not be parsed: 400), or refuses it. */
  handle(req: IncomingMessage, socket: Duplex, head: Buffer, dest: Destination | undefined, options: UpgradeOptions): void {
    const snapshot = this.#store.current();
    const started = this.#dispatcher.exchangeFor(req, dest, snapshot);
    const { exchange } = started;
    exchange.noteClient(req);
    // The head checks the listener makes on requests (net/request-head.ts), which upgrades do not pass through.
    const problem = headProblem(req, options.requireHost);
    if (problem) return refuseUpgrade(socket, exchange, problem);
    const admitted = this.#dispatcher.admit(snapshot, req, dest, started, options.authenticated);
    if (admitted instanceof ProxyError) return refuseUpgrade(socket, exchange, admitted, refusalHeaders(admitted));
    const route = snapshot.egress!.routes[admitted.index];
    exchange.route = route.name;
    if (!isWebSocketUpgrade(req)) {
      const offered = JSON.stringify(req.headers.upgrade ?? '');
      return refuseUpgrade(socket, exchange, new ProxyError('bad_request', `only WebSocket upgrades are relayed (GET with Upgrade: websocket), not ${offered}`));
    }
    // An upgrade is one request of its route: its rate limit counts it.
    const admission = route.policies?.admit(req, this.#policies);
    if (admission?.refusal) return refuseUpgrade(socket, exchange, admission.refusal, admission.headers);
    const chosen = this.#dispatcher.target(snapshot, admitted.index, admitted.dest);
    if (chosen instanceof ProxyError) return refuseUpgrade(socket, exchange, chosen);
    // A pass-through's connection is checked where it really goes by its endpoint's agent, as its
    // pool's are (destinations.ts); its lease keeps the destination from being evicted while the WebSocket is open.
    proxyUpgrade(req, socket, head, route, chosen.target, exchange, () => chosen.lease?.release());
  }
}
