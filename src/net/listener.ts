/**
 * A listening node:http server with the SPEC's limits (headersTimeout,
 * requestTimeout, keepAliveTimeout, maxConnections, maxHeaderSize), parser
 * errors answered in the sidecar's own format, connections counted, and a
 * graceful close: stop accepting, let in-flight requests finish up to a
 * deadline, then cut what is left.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { ListenerName } from '../config/compile.ts';
import type { ListenerConfig } from '../config/schema.ts';
import { ProxyError, type ErrorCode } from '../proxy/errors.ts';
import { activeConnections } from '../observe/metrics.ts';
import { log } from '../observe/log.ts';

/** How often Node checks headersTimeout/requestTimeout; short so the slowloris guard really bites. */
const CONNECTIONS_CHECK_MS = 250;

export interface ListenerHandlers {
  request(req: IncomingMessage, res: ServerResponse): void;
  upgrade?(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  connect?(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

/** An http.Server plus the sockets it must close on shutdown that Node does not track (upgrades, tunnels). */
export class Listener {
  readonly name: ListenerName | 'admin';
  readonly server: Server;
  readonly #detached = new Set<Duplex>();

  constructor(name: ListenerName | 'admin', limits: ListenerConfig | undefined, handlers: ListenerHandlers) {
    this.name = name;
    const requestTimeout = limits?.requestTimeout ?? 300_000;
    const headersTimeout = Math.min(limits?.headersTimeout ?? 10_000, requestTimeout || Infinity);
    this.server = createServer(
      {
        headersTimeout,
        requestTimeout,
        keepAliveTimeout: limits?.keepAliveTimeout ?? 5_000,
        maxHeaderSize: limits?.maxHeaderSize ?? 16 * 1024,
        connectionsCheckingInterval: CONNECTIONS_CHECK_MS,
        requireHostHeader: true,
        insecureHTTPParser: false,
      },
      handlers.request,
    );
    if (limits) this.server.maxConnections = limits.maxConnections;
    if (handlers.upgrade) this.server.on('upgrade', handlers.upgrade);
    if (handlers.connect) this.server.on('connect', handlers.connect);
    this.server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => answerClientError(err, socket));
    const metricLabel = { listener: name };
    this.server.on('connection', (socket: Socket) => {
      activeConnections.inc(metricLabel);
      socket.once('close', () => activeConnections.dec(metricLabel));
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
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen({ host, port, exclusive: true }, () => {
        this.server.off('error', onError);
        this.server.on('error', (err) => log.error({ err, listener: this.name }, 'listener error'));
        resolve();
      });
    });
  }

  /** The bound port (useful when the config asked for port 0). */
  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  /**
   * Stops accepting, closes idle keep-alive connections, waits for in-flight
   * requests (and tunnels) up to `deadlineMs`, then destroys what is left.
   */
  async close(deadlineMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    // Responses that end from now on close their connection instead of keeping it.
    this.server.on('request', (_req: IncomingMessage, res: ServerResponse) => res.setHeader('connection', 'close'));
    const idleSweep = setInterval(() => this.server.closeIdleConnections(), 100);
    const detachedGone = this.#waitDetached(deadlineMs);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), deadlineMs);
    });
    const result = await Promise.race([Promise.all([closed, detachedGone]).then(() => 'drained' as const), deadline]);
    clearInterval(idleSweep);
    clearTimeout(timer);
    if (result === 'deadline') {
      this.server.closeAllConnections();
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

/** Parser and timeout errors of Node's server, answered in the sidecar's format. */
function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const error = new ProxyError(clientErrorCode(err.code));
  const body = JSON.stringify({ error: error.code, message: error.message });
  socket.end(
    `HTTP/1.1 ${error.status} ${STATUS_TEXT[error.status] ?? 'Error'}\r\n` +
      'content-type: application/json\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      `x-sidecar-error: ${error.code}\r\n` +
      'connection: close\r\n\r\n' +
      body,
  );
}

function clientErrorCode(code: string | undefined): ErrorCode {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return 'headers_too_large';
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'HPE_HEADERS_TIMEOUT':
      return 'request_timeout';
    case 'HPE_INVALID_TRANSFER_ENCODING':
      return 'not_implemented';
    default:
      return 'bad_request';
  }
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
};
