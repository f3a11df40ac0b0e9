/**
 * The HTTP/2 side of a listener: a node:http2 server that never listens
 * itself. Connections are handed to it (`accept`) by the listener's front
 * door once they are known to speak h2: by ALPN after a TLS handshake
 * (tls/front-door.ts), or by the client's connection preface on a plain port
 * with `h2c: true` (preface.ts). Each request stream becomes an
 * H2Request / H2Response pair and goes to the same request handler as an
 * HTTP/1.1 request, after the checks an HTTP/1.1 head gets.
 *
 * The listener's limits apply: SETTINGS_MAX_CONCURRENT_STREAMS and the
 * stream window from `http2`, the header list bounded by `maxHeaderSize`,
 * idle connections closed (GOAWAY) after `keepAliveTimeout`, and the abuse
 * defences of guard.ts. A graceful stop sends every session GOAWAY and lets
 * its open streams finish.
 */
import { createServer, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { ListenerName } from '../config/compile.ts';
import type { Http2Config, ListenerConfig } from '../config/schema.ts';
import type { ObservedClientResponse } from '../net/client.ts';
import type { HeadRecord } from '../net/request-head.ts';
import { Exchange } from '../observe/exchange.ts';
import { log } from '../observe/log.ts';
import { activeConnections, h2GoawaysTotal } from '../observe/metrics.ts';
import { ProxyError } from '../core/errors.ts';
import { refuse } from '../net/error-answer.ts';
import { requestIdOf } from '../proxy/headers.ts';
import { pathOf } from '../proxy/route.ts';
import { SessionGuard } from './guard.ts';
import { H2Request } from './request.ts';
import { H2Response } from './response.ts';

/** What the HTTP/2 server is given for each request. */
export type H2Handler = (req: H2Request, res: ObservedClientResponse) => void;

const DEFAULT_HTTP2: Http2Config = { maxConcurrentStreams: 100, initialWindowSize: 1024 * 1024, maxResets: 100, maxControlFrames: 100 };

/** The connection window: room for a few streams at full speed at once. */
const CONNECTION_WINDOW_FACTOR = 4;

export class H2Sessions {
  readonly #listener: ListenerName;
  readonly #server: Http2Server;
  readonly #handler: H2Handler;
  readonly #record: HeadRecord | undefined;
  readonly #sessions = new Set<ServerHttp2Session>();
  readonly #sockets = new WeakMap<ServerHttp2Session, Socket>();
  readonly #guards = new WeakMap<ServerHttp2Session, SessionGuard>();
  #limits: ListenerConfig | undefined;
  #accepting: Socket | undefined;
  #draining = false;

  constructor(listener: ListenerName, limits: ListenerConfig | undefined, handler: H2Handler, record?: HeadRecord) {
    this.#listener = listener;
    this.#limits = limits;
    this.#handler = handler;
    this.#record = record;
    this.#server = createServer({
      settings: this.#settings(),
      // The header list nghttp2 accepts, as `maxHeaderSize` bounds an HTTP/1.1 head.
      maxHeaderListPairs: 512,
      // nghttp2's own rapid-reset limit (guard.ts): for resets that never reach JavaScript, twice the guard's budget.
      streamResetBurst: 2 * this.#http2().maxResets,
      streamResetRate: Math.max(1, Math.ceil(this.#http2().maxResets / 10)),
    });
    this.#server.on('session', (session: ServerHttp2Session) => this.#onSession(session));
    this.#server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, raw: string[]) => this.#onStream(stream, headers, flags, raw));
  }

  /** Takes a connection that speaks h2 (its preface may already be buffered in it). */
  accept(socket: Socket): void {
    this.#accepting = socket;
    try {
      this.#server.emit('connection', socket);
    } finally {
      this.#accepting = undefined;
    }
  }

  /** New limits (a reload): for new connections, and as new SETTINGS for the open ones. */
  setLimits(limits: ListenerConfig): void {
    this.#limits = limits;
    const settings = this.#settings();
    this.#server.updateSettings(settings);
    for (const session of this.#sessions) {
      if (!session.destroyed && !session.closed) session.settings(settings);
    }
  }

  /** Graceful stop: GOAWAY to every connection; their open streams finish, then they close. */
  drain(): void {
    this.#draining = true;
    for (const session of this.#sessions) if (!session.closed) session.close();
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  #http2(): Http2Config {
    return (this.#limits as { http2?: Http2Config } | undefined)?.http2 ?? DEFAULT_HTTP2;
  }

  #settings(): { maxConcurrentStreams: number; initialWindowSize: number; maxHeaderListSize: number; enablePush: boolean } {
    const http2 = this.#http2();
    return {
      maxConcurrentStreams: http2.maxConcurrentStreams,
      initialWindowSize: http2.initialWindowSize,
      maxHeaderListSize: this.#limits?.maxHeaderSize ?? 16 * 1024,
      enablePush: false,
    };
  }

  #onSession(session: ServerHttp2Session): void {
    const socket = this.#accepting;
    if (!socket) return void session.destroy();
    this.#sockets.set(session, socket);
    this.#sessions.add(session);
    const label = { listener: this.#listener };
    activeConnections.inc(label);
    session.once('close', () => {
      this.#sessions.delete(session);
      activeConnections.dec(label);
    });
    // A session error is the connection's end (a reset, a protocol error): nothing to answer. nghttp2 ends a
    // connection whose client broke the protocol (its own rapid-reset limit among them) with GOAWAY: counted.
    session.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'ERR_HTTP2_ERROR') h2GoawaysTotal.inc({ listener: this.#listener, reason: 'protocol_error' });
      log.debug({ err, listener: this.#listener, clientAddress: socket.remoteAddress }, 'HTTP/2 session error');
    });
    const http2 = this.#http2();
    const guard = new SessionGuard(session, this.#listener, { maxResets: http2.maxResets, maxControlFrames: http2.maxControlFrames, prefaceTimeout: this.#limits?.headersTimeout ?? 10_000 }, {
      address: socket.remoteAddress,
      port: socket.remotePort,
    });
    this.#guards.set(session, guard);
    session.setLocalWindowSize(http2.initialWindowSize * CONNECTION_WINDOW_FACTOR);
    const idle = this.#limits?.keepAliveTimeout ?? 65_000;
    if (idle > 0) session.setTimeout(idle, () => session.close());
    if (this.#draining) session.close();
  }

  #onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, raw: string[]): void {
    const session = stream.session as ServerHttp2Session | undefined;
    const socket = session && this.#sockets.get(session);
    if (!socket) return void stream.close();
    this.#guards.get(session)?.stream(stream);
    // A stream error (a reset) ends only that stream; its response sees the close.
    stream.on('error', () => {});
    const req = new H2Request(stream, headers, flags, raw, socket);
    const res = new H2Response(req);
    if (req.problem !== undefined || req.method === 'CONNECT') {
      const problem = new ProxyError('bad_request', req.problem ?? 'CONNECT is not served over HTTP/2 here');
      const exchange = new Exchange(this.#listener, requestIdOf(req.headers), req.method, '', pathOf(req.url), this.#record?.accessLog() ?? false);
      res.observer = exchange;
      exchange.protocol = '2';
      refuse(res, exchange, problem);
      return;
    }
    this.#handler(req, res);
  }
}
