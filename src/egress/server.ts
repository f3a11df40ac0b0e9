/**
 * The egress listener: the ambassador the app reaches through HTTP_PROXY /
 * HTTPS_PROXY. Absolute-form requests (`GET http://host/path`) and, for apps
 * that call the sidecar directly, origin-form requests with a Host are routed
 * by destination; CONNECT goes to connect.ts, WebSocket upgrades to
 * websocket.ts. No route = 403: never an open proxy.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ObservedResponse } from '../net/observed-response.ts';
import type { ListenerSnapshot } from '../config/compile.ts';
import { Listener } from '../net/listener.ts';
import { clientErrorHandler } from '../net/raw-answer.ts';
import { ConnectHandler } from './connect.ts';
import { Destinations } from './destinations.ts';
import { EgressDispatcher, type EgressDeps } from './dispatch.ts';
import { parseAbsolute, parseAuthority, type Destination } from './target.ts';
import { EgressUpgrades } from './websocket.ts';

export type { EgressDeps } from './dispatch.ts';

export class EgressServer {
  readonly listener: Listener;
  readonly #destinations: Destinations;
  readonly #dispatcher: EgressDispatcher;
  readonly #upgrades: EgressUpgrades;
  readonly #connects: ConnectHandler;
  #draining = false;

  constructor(deps: EgressDeps, settings: ListenerSnapshot['settings']) {
    this.#destinations = new Destinations(deps.ownAddresses);
    this.#dispatcher = new EgressDispatcher(deps, this.#destinations);
    this.#upgrades = new EgressUpgrades(deps.store, this.#dispatcher, deps.policies);
    this.listener = new Listener('egress', settings, {
      request: (req, res) => this.#onRequest(req, res),
      upgrade: (req, socket, head) => this.#onUpgrade(req, socket, head),
      connect: (req, socket, head) => this.#connects.handle(req, socket, head),
      clientError: clientErrorHandler('egress', () => deps.store.current().config.log.access),
      headRecord: { listener: 'egress', accessLog: () => deps.store.current().config.log.access },
    });
    this.#connects = new ConnectHandler(deps, this.listener, this.#dispatcher, this.#upgrades);
  }

  /** Pass-through destinations with a live pool (for tests and the admin view). */
  get destinationCount(): number {
    return this.#destinations.size;
  }

  #onRequest(req: IncomingMessage, res: ObservedResponse): void {
    this.#dispatcher.handle(req, res, destinationOf(req), { authenticated: false, closeAfter: this.#draining });
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.listener.track(socket);
    this.#upgrades.handle(req, socket, head, destinationOf(req), { authenticated: false, requireHost: true });
  }

  /** Stops accepting, lets requests and tunnels finish up to the deadline, then closes the destination pools. */
  async close(deadlineMs: number): Promise<void> {
    this.#draining = true;
    this.#connects.drain();
    const sweep = setInterval(() => this.#connects.drain(), 100);
    try {
      await this.listener.close(deadlineMs);
    } finally {
      clearInterval(sweep);
      this.#connects.close();
    }
    await Promise.race([this.#destinations.close(), new Promise((resolve) => setTimeout(resolve, 1_000))]);
    await this.#destinations.destroy();
  }
}

/** Where a request on the egress port goes: its absolute-form target, or (origin-form) its Host. */
function destinationOf(req: IncomingMessage): Destination | undefined {
  const url = req.url ?? '';
  if (!url.startsWith('/')) return parseAbsolute(url);
  // Origin-form: the app called the sidecar itself, and Host names the destination (Envoy-style egress).
  const authority = parseAuthority(req.headers.host, 80);
  return authority && { scheme: 'http', host: authority.host, port: authority.port, path: url };
}
