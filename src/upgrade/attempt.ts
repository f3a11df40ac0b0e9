/**
 * One try of a WebSocket upgrade on one endpoint. http-proxy makes it: the
 * upgrade request through the endpoint's agent (its TLS settings, and for an
 * egress pass-through the checked lookup: upstream/agent.ts), the 101 passed
 * on, and both sockets piped. What the sidecar adds rides on http-proxy's
 * events:
 *
 * - `proxyReqWs`: the request head becomes ours (rebuilt like a proxied
 *   request's, by the caller) in place of the copy of the client's that
 *   http-proxy made, with the rewritten path; the connect and answer timers
 *   start.
 * - the upstream request's 'upgrade' (a 101) and 'response' (any other
 *   answer), heard before http-proxy's own listeners: the head it passes on
 *   gets the route's response rules and `x-request-id` (another answer also
 *   loses its hop-by-hop headers and says `Connection: close`, as the
 *   connection ends after it); the outcome is settled.
 * - `open`: bytes are counted both ways, and a socket that closes closes the
 *   other one (the pipe passes a FIN on, not a destroy).
 * - the error callback, before the outcome: no answer (connect or TLS
 *   failure, reset, a timer): the sidecar's own error answer, written before
 *   http-proxy ends the client's socket.
 */
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import type { HeaderRules } from '../config/compile.ts';
import type { Exchange } from '../observe/exchange.ts';
import { ProxyError, fromUpstreamError } from '../core/errors.ts';
import { clientResponseHeaders } from '../proxy/headers.ts';
import { writeRawError } from '../net/raw-answer.ts';
import type { EndpointState } from '../upstream/state.ts';

/**
 * How the try ended:
 * - `switched`: a 101; http-proxy passed it on and pipes both ways.
 * - `answered`: another answer, which http-proxy passes on; then the connection closes.
 * - `failed`: no answer; the client got the sidecar's own (unless it had left).
 */
export type UpgradeOutcome =
  | { readonly kind: 'switched' }
  | { readonly kind: 'answered'; readonly status: number }
  | { readonly kind: 'failed'; readonly error: ProxyError };

export interface UpgradeTry {
  readonly req: IncomingMessage;
  /** The client's socket, and the bytes already read after its head. */
  readonly socket: Duplex;
  readonly head: Buffer;
  readonly endpoint: EndpointState;
  /** Path and query sent upstream. */
  readonly path: string;
  /** Flat [name, value, ...] list with Host, Connection and Upgrade (headers.ts, `keepUpgrade`). */
  readonly headers: readonly string[];
  readonly connectTimeout: number;
  /** Time allowed until the answer's head (ms; 0 = none). */
  readonly headTimeout: number;
  readonly responseRules: HeaderRules | undefined;
  readonly exchange: Exchange;
}

export interface PendingUpgrade {
  readonly outcome: Promise<UpgradeOutcome>;
  /** Stops it (the client left): the outcome is then `failed`, with no answer. */
  cancel(): void;
}

/** Shared by every upgrade; each call passes its own target and agent. */
const proxy = httpProxy.createProxyServer({});
/** The try whose request http-proxy is making (set only during proxy.ws()). */
const making = new WeakMap<IncomingMessage, Attempt>();
/** Tries switched to a WebSocket, by the upstream socket http-proxy reports in 'open'. */
const switched = new WeakMap<Duplex, Attempt>();

proxy.on('proxyReqWs', (proxyReq, req) => making.get(req)?.sending(proxyReq));
proxy.on('open', (upstreamSocket) => switched.get(upstreamSocket)?.opened(upstreamSocket));

/** The 101's headers as the upstream sent them (the handshake), less what the route removes, plus what it adds. */
function switchedHeaders(headers: IncomingMessage['headers'], rules: HeaderRules | undefined, requestId: string): IncomingMessage['headers'] {
  const out: IncomingMessage['headers'] = {};
  for (const [name, value] of Object.entries(headers)) {
    if (rules?.remove.has(name) || rules?.add.some(([added]) => added === name)) continue;
    out[name] = value;
  }
  for (const [name, value] of rules?.add ?? []) out[name] = value;
  out['x-request-id'] ??= requestId;
  return out;
}

class Attempt implements PendingUpgrade {
  readonly outcome: Promise<UpgradeOutcome>;
  readonly #try: UpgradeTry;
  #settle!: (outcome: UpgradeOutcome) => void;
  #settled = false;
  #cancelled = false;
  #proxyReq: ClientRequest | undefined;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #started = performance.now();

  constructor(spec: UpgradeTry) {
    this.#try = spec;
    this.outcome = new Promise((resolve) => (this.#settle = resolve));
  }

  get sent(): boolean {
    return this.#proxyReq !== undefined;
  }

  cancel(): void {
    if (this.#settled) return;
    this.#cancelled = true;
    this.#proxyReq?.destroy(new ProxyError('upstream_reset', 'the client left before the upgrade was answered'));
  }

  settle(outcome: UpgradeOutcome): void {
    if (this.#settled) return;
    this.#settled = true;
    for (const timer of this.#timers) clearTimeout(timer);
    if (outcome.kind !== 'failed') this.#try.exchange.upstreamHeaderMs = performance.now() - this.#started;
    this.#settle(outcome);
  }

  /** 'proxyReqWs': nothing is sent yet (http-proxy ends the request after this event). */
  sending(proxyReq: ClientRequest): void {
    const { headers, path, endpoint, connectTimeout, headTimeout } = this.#try;
    this.#proxyReq = proxyReq;
    for (const name of proxyReq.getHeaderNames()) proxyReq.removeHeader(name);
    for (let i = 0; i < headers.length; i += 2) proxyReq.appendHeader(headers[i], headers[i + 1]);
    proxyReq.path = path;

    const connectTimer = setTimeout(() => {
      proxyReq.destroy(new ProxyError('upstream_connect_failed', `no connection to ${endpoint.shownAuthority} within ${connectTimeout}ms`));
    }, connectTimeout);
    this.#timers.push(connectTimer);
    proxyReq.once('socket', (socket: Socket) => socket.once(endpoint.tls ? 'secureConnect' : 'connect', () => clearTimeout(connectTimer)));
    if (headTimeout > 0) this.#timers.push(setTimeout(() => proxyReq.destroy(new ProxyError('upstream_timeout')), headTimeout));

    proxyReq.once('upgrade', (response: IncomingMessage, upstreamSocket: Socket) => this.#switched(response, upstreamSocket));
    proxyReq.once('response', (response: IncomingMessage) => this.#answered(response));
    // Node reports a connection lost before the answer as an 'error' first; this only makes sure the try ends.
    proxyReq.once('close', () => this.failed(new ProxyError('upstream_reset', 'the upstream connection closed before an answer')));
  }

  /** http-proxy's error callback. After the outcome, a socket error: the 'open' wiring closes the other side. */
  failed(err: Error): void {
    if (this.#settled) return;
    const error = fromUpstreamError(err);
    const { socket, exchange } = this.#try;
    if (!this.#cancelled && socket.writable) exchange.answeredRaw(error, writeRawError(socket, error, { 'x-request-id': exchange.reqId }));
    this.settle({ kind: 'failed', error });
  }

  /** 'open': http-proxy has written the 101 and piped the sockets. */
  opened(upstream: Duplex): void {
    const { exchange } = this.#try;
    const client = this.#try.socket as Socket;
    const other = upstream as Socket;
    if (client.destroyed) {
      other.destroy();
      return;
    }
    client.on('data', (chunk: Buffer) => (exchange.bytesIn += chunk.length));
    other.on('data', (chunk: Buffer) => (exchange.bytesOut += chunk.length));
    // What one side wrote still reaches the other (destroySoon) unless it was cut (an error).
    other.once('close', (hadError: boolean) => (hadError ? client.destroy() : client.destroySoon()));
    client.once('close', (hadError: boolean) => (hadError ? other.destroy() : other.destroySoon()));
  }

  #switched(response: IncomingMessage, upstreamSocket: Socket): void {
    const { exchange, responseRules } = this.#try;
    response.headers = switchedHeaders(response.headers, responseRules, exchange.reqId);
    exchange.status = 101;
    switched.set(upstreamSocket, this);
    this.settle({ kind: 'switched' });
  }

  #answered(response: IncomingMessage): void {
    const { exchange, responseRules } = this.#try;
    const client = this.#try.socket;
    const status = response.statusCode ?? 502;
    const headers = clientResponseHeaders(response.headers, responseRules);
    headers['x-request-id'] ??= exchange.reqId;
    headers.connection = 'close';
    response.headers = headers;
    exchange.status = status;
    response.on('data', (chunk: Buffer) => (exchange.bytesOut += chunk.length));
    response.on('error', () => client.destroy());
    if (client.destroyed) response.destroy();
    else client.once('close', () => response.destroy());
    this.settle({ kind: 'answered', status });
  }
}

/** Makes the upgrade request of `spec` to its endpoint through http-proxy. */
export function startUpgrade(spec: UpgradeTry): PendingUpgrade {
  const attempt = new Attempt(spec);
  const { req, socket, head, endpoint } = spec;
  // With Expect in the headers it copies, Node would write http-proxy's head at once (for
  // 100-continue), and 'proxyReqWs' could no longer replace it; ours never carries Expect (headers.ts).
  delete req.headers.expect;
  making.set(req, attempt);
  try {
    proxy.ws(req, socket, head, { target: endpoint.origin, agent: endpoint.agent }, (err: Error) => attempt.failed(err));
  } catch (err) {
    // A request Node would not make: the sidecar's fault, not the upstream's.
    attempt.failed(new ProxyError('internal_error', undefined, { cause: err }));
  } finally {
    making.delete(req);
  }
  // http-proxy gives up without a request (and destroys the socket) on what it takes for no WebSocket.
  if (!attempt.sent) attempt.settle({ kind: 'failed', error: new ProxyError('bad_request', 'not a WebSocket upgrade') });
  return attempt;
}
