/**
 * A listening node:http server with the SPEC's limits (headersTimeout,
 * requestTimeout, keepAliveTimeout, maxConnections, maxHeaderSize), parser
 * errors and refused heads (request-head.ts) answered in the sidecar's own
 * format, connections counted, and a graceful close: stop accepting, let
 * in-flight requests finish up to a deadline, then cut what is left.
 *
 * A TLS listener binds a plain TCP server in front instead: each connection
 * passes its front door (src/tls/front-door.ts) and is then handed to the
 * same node:http server, so limits, upgrades, parser errors and the drain
 * work the same on both; a connection whose ALPN chose h2 goes to the
 * listener's HTTP/2 server (src/h2/sessions.ts). A plain listener with
 * `h2c: true` has a TCP server in front too, which tells an h2c preface from
 * HTTP/1.1 by the first bytes (src/h2/preface.ts).
 */
import type { IncomingMessage } from 'node:http';
import { http } from './node-http.ts';
import type { Duplex } from 'node:stream';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import type { ListenerName } from '../config/compile.ts';
import type { ListenerConfig } from '../config/schema.ts';
import { answerClientError } from './raw-answer.ts';
import { admitHead, upgradeWanted, type HeadRecord } from './request-head.ts';
import { ObservedResponse, tellObserver, type ObservedServer, type ServerLifecycle } from './observed-response.ts';
import { activeConnections } from '../observe/metrics.ts';
import { log } from '../observe/log.ts';
import { H2Sessions, type H2Handler } from '../h2/sessions.ts';
import { sortByPreface } from '../h2/preface.ts';

/** How often Node checks headersTimeout/requestTimeout; short so the slowloris guard really bites. */
const CONNECTIONS_CHECK_MS = 250;

export interface ListenerHandlers {
  /** Sets `res.observer` to have the response's close reported (see observed-response.ts). */
  request(req: IncomingMessage, res: ObservedResponse): void;
  upgrade?(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  connect?(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Parser and timeout errors (see raw-answer.ts clientErrorHandler); answered without a trace when absent (admin). */
  clientError?(err: Error & { code?: string }, socket: Duplex): void;
  /** Where a head the listener refuses (request-head.ts) is logged and counted; not recorded when absent (admin). */
  headRecord?: HeadRecord;
  /** HTTP/2 requests (h2 by ALPN on TLS, h2c with `h2c: true`); a listener without it speaks HTTP/1.x only. */
  h2?: H2Handler;
}

/**
 * What a TLS listener's connections pass through before HTTP (src/tls/): a
 * front door per server, which hands each connection that got through to
 * `handoff` with the protocol ALPN chose.
 */
export interface SecureFront {
  frontDoor(handoff: (socket: Socket, protocol: string) => void): { accept(raw: Socket): void };
}

/** An http.Server plus the sockets it must close on shutdown that Node does not track (upgrades, tunnels). */
export class Listener {
  readonly name: ListenerName | 'admin';
  /**
   * Bind with SO_REUSEPORT, so that several worker processes (`workers`) each
   * bind the same address and the kernel spreads connections among them.
   */
  reusePort = false;
  readonly #handlers: ListenerHandlers;
  readonly #secure: SecureFront | undefined;
  #limits: ListenerConfig | undefined;
  #server: ObservedServer;
  /** Servers replaced by a rebind: no longer accepting, finishing what they have in flight. */
  readonly #retired = new Set<ObservedServer>();
  /** Shared by every server of this listener, so a rebind keeps tracking upgrades made on the old one. */
  readonly #detached = new Set<Duplex>();

  constructor(name: ListenerName | 'admin', limits: ListenerConfig | undefined, handlers: ListenerHandlers, secure?: SecureFront) {
    this.name = name;
    this.#handlers = handlers;
    this.#secure = secure;
    this.#limits = limits;
    this.#server = this.#createServer();
  }

  /** The server accepting connections now (a rebind replaces it). */
  get server(): ObservedServer {
    return this.#server;
  }

  #createServer(): ObservedServer {
    const handlers = this.#handlers;
    const lifecycle: ServerLifecycleState = { stopping: false, stopped: undefined, sockets: new Set(), front: undefined };
    const server: ObservedServer = http.createServer<typeof IncomingMessage, typeof ObservedResponse>(
      {
        ...serverLimits(this.#limits),
        connectionsCheckingInterval: CONNECTIONS_CHECK_MS,
        // Checked by admitHead() instead, so the answer is the sidecar's own (Node's is a bare 400).
        requireHostHeader: false,
        insecureHTTPParser: false,
        ServerResponse: ObservedResponse,
        // Without an 'upgrade' handler (egress, admin) every offer is served as a plain request, as Node does by default.
        shouldUpgradeCallback: handlers.upgrade ? upgradeWanted : refuseUpgrade,
      },
      (req, res) => {
        res.lifecycle = lifecycle;
        res.on('close', tellObserver);
        if (admitHead(req, res, true, handlers.headRecord)) handlers.request(req, res);
      },
    );
    lifecycles.set(server, lifecycle);
    const h2c = (this.#limits as { h2c?: boolean } | undefined)?.h2c === true;
    if (handlers.h2 && (this.#secure || h2c)) lifecycle.h2 = new H2Sessions(this.name as ListenerName, this.#limits, handlers.h2, handlers.headRecord);
    if (this.#secure) lifecycle.front = this.#frontOf(server, lifecycle);
    else if (lifecycle.h2) lifecycle.front = this.#plainFrontOf(server, lifecycle);
    if (this.#limits) boundOf(server).maxConnections = this.#limits.maxConnections;
    if (handlers.upgrade) server.on('upgrade', handlers.upgrade);
    if (handlers.connect) server.on('connect', handlers.connect);
    server.on('clientError', handlers.clientError ?? answerClientError);
    const metricLabel = { listener: this.name };
    server.on('connection', (socket: Socket) => {
      activeConnections.inc(metricLabel);
      lifecycle.sockets.add(socket);
      socket.once('close', () => {
        activeConnections.dec(metricLabel);
        lifecycle.sockets.delete(socket);
      });
    });
    return server;
  }

  /** The TCP server bound in front of `server` for a TLS listener: every connection goes through the front door first. */
  #frontOf(server: ObservedServer, lifecycle: ServerLifecycleState): TcpServer {
    const door = this.#secure!.frontDoor((socket, protocol) => {
      if (protocol === 'h2' && lifecycle.h2) lifecycle.h2.accept(socket);
      else server.emit('connection', socket);
    });
    return createTcpServer({ noDelay: true }, (raw) => {
      // Tracked from the start: a connection still in its handshake is cut at the shutdown deadline too.
      lifecycle.sockets.add(raw);
      raw.once('close', () => lifecycle.sockets.delete(raw));
      door.accept(raw);
    });
  }

  /** The TCP server in front of a plain listener with h2c: an h2 preface goes to HTTP/2, anything else to HTTP/1.1. */
  #plainFrontOf(server: ObservedServer, lifecycle: ServerLifecycleState): TcpServer {
    return createTcpServer({ noDelay: true }, (raw) => {
      lifecycle.sockets.add(raw);
      raw.once('close', () => lifecycle.sockets.delete(raw));
      sortByPreface(raw, this.#limits?.headersTimeout ?? 10_000, (socket, protocol) => {
        if (protocol === 'h2') lifecycle.h2!.accept(socket);
        else server.emit('connection', socket);
      });
    });
  }

  /** A socket that left HTTP (WebSocket, CONNECT tunnel): closed by us at the shutdown deadline. */
  track(socket: Duplex): void {
    this.#detached.add(socket);
    socket.once('close', () => this.#detached.delete(socket));
  }

  get detachedCount(): number {
    return this.#detached.size;
  }

  listen(host: string, port: number): Promise<void> {
    return listenOn(this.#server, host, port, this.name, this.reusePort);
  }

  /** Where the current server is bound (null before it is). */
  address(): AddressInfo | null {
    const address = boundOf(this.#server).address();
    return typeof address === 'object' ? address : null;
  }

  /**
   * New limits (a reload): applied in place, to new connections and to the
   * timeouts Node checks on the open ones. Servers bound later get them too.
   */
  setLimits(limits: ListenerConfig): void {
    this.#limits = limits;
    Object.assign(this.#server, serverLimits(limits));
    boundOf(this.#server).maxConnections = limits.maxConnections;
    lifecycles.get(this.#server)?.h2?.setLimits(limits);
  }

  /**
   * Binds a second server with the same handlers and limits on a new address
   * while the current one keeps serving. `commit` makes it the current one and
   * retires the old (it stops accepting and finishes its requests, upgrades
   * and tunnels); `abort` closes it. A bind failure rejects and changes nothing.
   */
  async bindNext(host: string, port: number): Promise<{ commit(): void; abort(): Promise<void> }> {
    const next = this.#createServer();
    await listenOn(next, host, port, this.name, this.reusePort);
    return {
      commit: () => {
        const old = this.#server;
        this.#server = next;
        this.#retired.add(old);
        void stopAccepting(old).then(() => this.#retired.delete(old));
      },
      abort: () => stopAccepting(next),
    };
  }

  /** The bound port (useful when the config asked for port 0). */
  get port(): number {
    return this.address()?.port ?? 0;
  }

  /**
   * Stops accepting, closes idle keep-alive connections, waits for in-flight
   * requests (and tunnels) up to `deadlineMs`, then destroys what is left:
   * every socket the server accepted, not only those Node's HTTP server still
   * tracks. A socket that left HTTP without being tracked (a refused CONNECT
   * or upgrade, answered and half-closed by us) is gone from Node's list but
   * still counted by server.close(): a client that never closes its side
   * would otherwise hold the shutdown forever. Servers retired by a rebind
   * get the same deadline.
   */
  async close(deadlineMs: number): Promise<void> {
    const servers = [this.#server, ...this.#retired];
    const closed = Promise.all(servers.map(stopAccepting));
    const detachedGone = this.#waitDetached(deadlineMs);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), deadlineMs);
    });
    const result = await Promise.race([Promise.all([closed, detachedGone]).then(() => 'drained' as const), deadline]);
    clearTimeout(timer);
    if (result === 'deadline') {
      for (const server of servers) {
        server.closeAllConnections();
        for (const socket of lifecycles.get(server)!.sockets) socket.destroy();
      }
      for (const socket of this.#detached) socket.destroy();
      await closed;
    }
  }

  async #waitDetached(deadlineMs: number): Promise<void> {
    const until = Date.now() + deadlineMs;
    while (this.#detached.size > 0 && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

function refuseUpgrade(): boolean {
  return false;
}

/** The limits Node reads from the server object (per connection, or in its periodic connections check). */
export function serverLimits(limits: ListenerConfig | undefined): { headersTimeout: number; requestTimeout: number; keepAliveTimeout: number; maxHeaderSize: number } {
  const requestTimeout = limits?.requestTimeout ?? 300_000;
  return {
    headersTimeout: Math.min(limits?.headersTimeout ?? 10_000, requestTimeout || Infinity),
    requestTimeout,
    keepAliveTimeout: limits?.keepAliveTimeout ?? 5_000,
    maxHeaderSize: limits?.maxHeaderSize ?? 16 * 1024,
  };
}

function listenOn(server: ObservedServer, host: string, port: number, name: string, reusePort: boolean): Promise<void> {
  const bound = boundOf(server);
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    bound.once('error', onError);
    // exclusive: a cluster worker binds its own socket instead of sharing the primary's.
    bound.listen({ host, port, exclusive: true, reusePort }, () => {
      bound.off('error', onError);
      bound.on('error', (err) => log.error({ err, listener: name }, 'listener error'));
      // The HTTP server behind a front door never listens itself: 'listening' starts its
      // connection tracking (headersTimeout, requestTimeout, closeIdleConnections).
      if (bound !== server) server.emit('listening');
      resolve();
    });
  });
}

/** The server that accepts connections for `server`: its TLS front, or itself. */
function boundOf(server: ObservedServer): TcpServer {
  return lifecycles.get(server)?.front ?? server;
}

/** A server's graceful stop: `stopping` is read by each response as it writes its head (see ObservedResponse.writeHead). */
interface ServerLifecycleState extends ServerLifecycle {
  stopping: boolean;
  /** Resolves once the server's last connection is gone; set when the stop begins. */
  stopped: Promise<void> | undefined;
  /** Every socket the server accepted and that is still open, whatever protocol it went on to speak. */
  readonly sockets: Set<Socket>;
  /** The TCP server that accepts for it (TLS listeners, h2c). */
  front: TcpServer | undefined;
  /** Its HTTP/2 connections. */
  h2?: H2Sessions;
}
/** Every server made by Listener.#createServer has one. */
const lifecycles = new WeakMap<ObservedServer, ServerLifecycleState>();

/**
 * Stops a server accepting; resolves once its last connection is gone. Idle
 * keep-alive connections close at once, busy ones after their response
 * (which says `connection: close`). Idempotent.
 */
function stopAccepting(server: ObservedServer): Promise<void> {
  const lifecycle = lifecycles.get(server)!;
  if (lifecycle.stopped) return lifecycle.stopped;
  // Responses not yet started end their connection (`connection: close`): a keep-alive
  // client is told to go elsewhere instead of finding its connection cut.
  lifecycle.stopping = true;
  lifecycle.h2?.drain();
  const idleSweep = setInterval(() => server.closeIdleConnections(), 100);
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // A front's close ends once its last connection is gone (the HTTP server behind it counts none of them).
  const front = lifecycle.front;
  const frontClosed = front && new Promise<void>((resolve) => front.close(() => resolve()));
  lifecycle.stopped = Promise.all([closed, frontClosed]).then(() => undefined).finally(() => clearInterval(idleSweep));
  server.closeIdleConnections();
  return lifecycle.stopped;
}

