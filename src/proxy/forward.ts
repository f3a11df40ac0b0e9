/**
 * One attempt of one request through an undici pool, written straight to the
 * client's response by a callback-style dispatch handler: no intermediate
 * stream, no per-chunk promise. Backpressure runs both ways (undici pauses
 * reading the upstream while the client's socket is full; the request body is
 * a stream undici pulls), and the attempt can be aborted at any point.
 *
 * Both timeouts of a try are ours, on one Node timer at a time: the wait for
 * the head (`headTimeout`), then the longest pause inside the body
 * (`bodyIdleTimeout`, re-armed by each chunk, not counted while the client's
 * own socket holds the upstream paused, as undici does). undici's own
 * bodyTimeout made a fast-timer object per request that lives until undici's
 * next 500 ms sweep, so it outlived two young-generation collections:
 * `--trace-gc` under load (wrk, 50 connections) showed 177 bytes promoted to
 * the old generation per request with it and 77 without.
 *
 * The timers are unref'd, as Node's own HTTP timers are (the sockets keep
 * the process alive): Node deletes a timer list that empties only when its
 * timers are ref'd, so with ref'd timers the list of each duration was made
 * again, and filed in a priority queue, for nearly every request.
 */
import type { ClientResponse } from '../net/client.ts';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { HeaderRules } from '../config/compile.ts';
import type { Exchange } from '../observe/exchange.ts';
import type { EndpointState } from '../upstream/state.ts';
import { clientResponseHeaders, clientTrailers } from './headers.ts';
import { ProxyError, fromUpstreamError } from '../core/errors.ts';
import { releaseAfterWrite } from '../net/read-buffer.ts';
import { asTextBody } from '../net/text-body.ts';
import { onlyChunked } from '../net/request-head.ts';
import type { BodyFilter, ResponseFilter } from '../policy/policy.ts';
import { grpcStatusOf } from '../h2/grpc.ts';

export interface AttemptRequest {
  readonly endpoint: EndpointState;
  readonly method: string;
  readonly path: string;
  /** Flat [name, value, ...] list, already rebuilt by headers.ts. */
  readonly headers: string[];
  readonly body: Readable | Buffer | null;
  /** When the try began (performance.now()): the access line's `upstreamHeaderMs` counts from here. */
  readonly startedAt: number;
  /** Time allowed until the response head (ms). */
  readonly headTimeout: number;
  /** Longest pause inside the response body (ms). */
  readonly bodyIdleTimeout: number;
  readonly responseRules: HeaderRules | undefined;
  /** Extra headers on the client response (e.g. x-sidecar-attempts, RateLimit). */
  readonly extraResponseHeaders?: Record<string, string>;
  /** The route's policies' view of the response (compression): may rewrite the head and filter the body. */
  readonly responseFilter?: ResponseFilter;
}

/**
 * How an attempt ended:
 * - `done`: the whole response reached the client.
 * - `failed`: nothing was sent to the client; `error` says why (retryable by kind).
 * - `rejected`: the head arrived but the judge refused it (a retryable status); nothing was sent.
 * - `broken`: the response had started and was cut; the client connection is destroyed.
 */
export type AttemptOutcome =
  | { readonly kind: 'done'; readonly status: number }
  | { readonly kind: 'failed'; readonly error: ProxyError }
  | { readonly kind: 'rejected'; readonly status: number; readonly headers: Record<string, string | string[] | undefined> }
  | { readonly kind: 'broken'; readonly status: number; readonly error: unknown };

/** Decides from the response head whether to pass it on (true) or drop it for a retry (false). */
export interface HeadJudge {
  acceptHead(status: number, headers: Record<string, string | string[] | undefined>): boolean;
}

/** Reason passed to undici when we abort an attempt ourselves. */
class AttemptAborted extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'AttemptAborted';
  }
}

/** Undici dispatch handler that writes one upstream response to the client. */
class ResponseWriter implements Dispatcher.DispatchHandler, Attempt {
  readonly #res: ClientResponse;
  readonly #exchange: Exchange;
  readonly #request: AttemptRequest;
  readonly #judge: HeadJudge;
  readonly #listener: AttemptListener;
  #controller: Dispatcher.DispatchController | undefined;
  #settled = false;
  #cancelled: Error | undefined;
  #status = 0;
  /** Body bytes still to come when the upstream announced a Content-Length; -1 otherwise. */
  #remaining = -1;
  /** The client's response was ended with the last announced bytes. */
  #ended = false;
  /** The head timer until the head arrives, then the body's idle timer. */
  #timer: NodeJS.Timeout | undefined;
  /** Upstream reading is paused until the client's socket drains. */
  #paused = false;
  /** When this try began: the access line's `upstreamHeaderMs` counts from here (queueing and connecting included, as NGINX's $upstream_header_time). */
  readonly #startedAt: number;
  /** The client's response is chunked, so the upstream's trailers can follow it. */
  #trailers = false;
  /** What the body goes through on its way to the client (a compressor), when the response filter asked for one. */
  #body: BodyFilter | undefined;
  /**
   * Body chunks may be freed once written (net/read-buffer.ts): only over
   * HTTP/1.1, where one socket read belongs to one response. An HTTP/2
   * connection's reads may hold other streams' bytes.
   */
  #release = true;

  constructor(res: ClientResponse, exchange: Exchange, request: AttemptRequest, judge: HeadJudge, listener: AttemptListener) {
    this.#res = res;
    this.#exchange = exchange;
    this.#request = request;
    this.#judge = judge;
    this.#listener = listener;
    this.#startedAt = request.startedAt;
    exchange.upstreamHeaderMs = -1; // the last try's, or none
    exchange.grpcStatus = undefined;
    exchange.upstreamProtocol = request.endpoint.protocol.version;
    if (request.headTimeout > 0) this.#timer = setTimeout(headTimedOut, request.headTimeout, this).unref();
  }

  /** Sends the attempt upstream. */
  dispatch(): void {
    const request = this.#request;
    const endpoint = request.endpoint;
    try {
      endpoint.pool.dispatch(
        {
          origin: endpoint.origin,
          method: request.method as Dispatcher.HttpMethod,
          path: request.path,
          headers: request.headers,
          body: request.body,
          // Our own timers (see the top of this file); the head timer covers queueing and connecting too.
          headersTimeout: 0,
          bodyTimeout: 0,
          // The endpoint's TLS name, not one undici would take from the Host header (registry.ts).
          servername: endpoint.serverName,
        } as Dispatcher.DispatchOptions,
        this,
      );
    } catch (err) {
      // undici refuses some requests synchronously (e.g. a closed pool, an invalid header).
      this.onResponseError(undefined as unknown as Dispatcher.DispatchController, err as Error);
    }
  }

  /** Stops the attempt (client gone, deadline, shutdown); an error of ours other than a ProxyError is an abort. */
  cancel(reason: ProxyError | Error): void {
    const error = reason instanceof ProxyError || reason instanceof AttemptAborted ? reason : new AttemptAborted(reason.message);
    this.#cancelled = error;
    // Settle first: undici may call onResponseError synchronously from abort().
    this.#finish(error instanceof ProxyError && this.#status === 0 ? { kind: 'failed', error } : { kind: 'broken', status: this.#status, error });
    this.#controller?.abort(error);
  }

  /** The head timer fired. */
  headTimedOut(): void {
    this.#timer = undefined;
    if (this.#status === 0) this.cancel(new ProxyError('upstream_timeout'));
  }

  /** The body's idle timer fired: the upstream went quiet mid-body, unless we paused it ourselves. */
  bodyIdled(): void {
    if (!this.#paused) this.cancel(new ProxyError('upstream_timeout'));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    // Cancelled while queued or connecting: stop as soon as undici lets us.
    if (this.#cancelled) controller.abort(this.#cancelled);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (this.#settled || statusCode < 200) return; // 1xx: Node answers 100-continue itself
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const exchange = this.#exchange;
    exchange.upstreamHeaderMs = performance.now() - this.#startedAt;
    // With `protocol: auto` the connection has told by now what ALPN chose.
    exchange.upstreamProtocol = this.#request.endpoint.protocol.version;
    this.#release = exchange.upstreamProtocol !== '2';
    // A grpc-status in the head is a trailers-only answer (gRPC): the judge may retry on it, the breaker counts it.
    if (headers['grpc-status'] !== undefined) exchange.grpcStatus = grpcStatusOf(headers);
    const coding = headers['transfer-encoding'];
    if (coding !== undefined && !onlyChunked(coding)) {
      // undici undoes only the chunking: relayed, `gzip, chunked` would reach the client as an unmarked gzip body.
      const error = new ProxyError('upstream_bad_response', `the upstream used a transfer coding other than chunked: ${String(coding)}`);
      this.#finish({ kind: 'failed', error });
      controller.abort(error);
      return;
    }
    if (!this.#judge.acceptHead(statusCode, headers)) {
      this.#finish({ kind: 'rejected', status: statusCode, headers }); // before abort(), which may report an error synchronously
      controller.abort(new AttemptAborted('response refused for a retry'));
      return;
    }
    this.#status = statusCode;
    const res = this.#res;
    const outgoing = clientResponseHeaders(headers, this.#request.responseRules);
    // An id the upstream gave its answer stays; otherwise the answer carries ours (see errors.ts refuse()).
    if (outgoing['x-request-id'] === undefined) outgoing['x-request-id'] = this.#exchange.reqId;
    if (this.#request.extraResponseHeaders) Object.assign(outgoing, this.#request.extraResponseHeaders);
    // A filtered body (compressed) has a length of its own, known only at its end: it goes chunked.
    const body = this.#request.responseFilter?.head(statusCode, outgoing, res, this.#exchange);
    this.#body = body;
    const length = body === undefined ? headers['content-length'] : undefined;
    this.#trailers = length === undefined && chunkedFor(res, statusCode);
    // Node refuses a Trailer header on a response it will not chunk (ERR_HTTP_TRAILER_INVALID): none will follow then.
    if (!this.#trailers && outgoing.trailer !== undefined) delete outgoing.trailer;
    res.writeHead(statusCode, outgoing);
    // A streamed body (server-sent events, chunked) may be slow to start: send the head now.
    // With a Content-Length the head leaves with the body in one write, saving a syscall;
    // a filtered body sends the head itself, with the body when it came whole.
    if (length === undefined && body === undefined) res.flushHeaders();
    else if (typeof length === 'string') this.#remaining = Number(length);
    const idle = this.#request.bodyIdleTimeout;
    if (idle > 0 && this.#remaining !== 0) this.#timer = setTimeout(bodyIdled, idle, this).unref();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#settled) return;
    const body = this.#body;
    if (body !== undefined) {
      // The filter counts what it sends in bytesOut, and writes to the client itself.
      this.#timer?.refresh();
      if (!body.write(chunk)) this.#waitForDrain(controller, body);
      return;
    }
    this.#exchange.bytesOut += chunk.length;
    if (this.#remaining === chunk.length) {
      // The last bytes of an announced length: head, body and end leave in one go
      // (one write path instead of write() then end()). onResponseEnd settles.
      // A small one as latin1 text (net/text-body.ts); a big one's memory is freed once written (net/read-buffer.ts).
      this.#remaining = 0;
      this.#ended = true;
      this.#res.end(asTextBody(chunk), 'latin1', this.#release ? releaseAfterWrite(chunk) : undefined);
      return;
    }
    if (this.#remaining > 0) this.#remaining -= chunk.length;
    this.#timer?.refresh();
    if (!this.#res.write(chunk, this.#release ? releaseAfterWrite(chunk) : undefined)) this.#waitForDrain(controller, this.#res);
  }

  /** Pauses reading the upstream until `sink` (the client's response, or the body filter) drains. */
  #waitForDrain(controller: Dispatcher.DispatchController, sink: { once(event: 'drain', listener: () => void): unknown }): void {
    controller.pause();
    this.#paused = true;
    sink.once('drain', () => {
      this.#paused = false;
      this.#timer?.refresh();
      controller.resume();
    });
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    if (this.#settled) return;
    if (trailers?.['grpc-status'] !== undefined) this.#exchange.grpcStatus = grpcStatusOf(trailers);
    const relayed = this.#trailers && trailers && !this.#ended ? clientTrailers(trailers, this.#request.responseRules) : undefined;
    const body = this.#body;
    if (body !== undefined) {
      // The upstream is done (no more idle timeout); the attempt is, once the filter has sent its last bytes.
      clearTimeout(this.#timer);
      this.#timer = undefined;
      body.end(relayed, () => this.#finish({ kind: 'done', status: this.#status }));
      return;
    }
    if (!this.#ended) {
      if (relayed) this.#res.addTrailers(relayed);
      this.#res.end();
    }
    this.#finish({ kind: 'done', status: this.#status });
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.#settled) return;
    if (this.#status === 0) {
      this.#finish({ kind: 'failed', error: fromUpstreamError(error) });
    } else {
      this.#finish({ kind: 'broken', status: this.#status, error });
    }
  }

  #finish(outcome: AttemptOutcome): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#timer);
    if (outcome.kind === 'broken') {
      this.#exchange.aborted = true;
      this.#body?.destroy();
      this.#res.destroy();
    }
    this.#request.endpoint.inFlight--;
    this.#listener.attemptEnded(outcome);
  }
}

/**
 * Whether Node will send this response chunked when it has no Content-Length
 * (its _storeHeader): a body is allowed (not HEAD, 204 or 304) and the client
 * takes chunked (HTTP/1.1, or an HTTP/1.0 client that said `TE: chunked`).
 * Trailers (RFC 9112 7.1.2) exist only there; an HTTP/1.1 client need not
 * send `TE: trailers` to receive them.
 */
function chunkedFor(res: ClientResponse, status: number): boolean {
  return res.useChunkedEncodingByDefault && status !== 204 && status !== 304 && res.req.method !== 'HEAD';
}

function headTimedOut(writer: ResponseWriter): void {
  writer.headTimedOut();
}

function bodyIdled(writer: ResponseWriter): void {
  writer.bodyIdled();
}

/** Hears how an attempt ended, once (the attempt loop: proxy.ts). */
export interface AttemptListener {
  attemptEnded(outcome: AttemptOutcome): void;
}

/** An attempt made and not yet sent: `dispatch()` sends it, `cancel()` stops it at any point. */
export interface Attempt {
  dispatch(): void;
  cancel(error: ProxyError | Error): void;
}

/**
 * Makes one attempt; `dispatch()` sends it upstream, and the response (if
 * accepted) is written to `res`. Its end reaches `listener` once, possibly
 * before dispatch() returns (undici refuses some requests synchronously), so
 * the caller keeps the attempt before sending it. A listener object rather
 * than a promise: this runs for every request, and a promise per try (with
 * the async frame awaiting it) showed in the CPU cost under load.
 */
export function makeAttempt(res: ClientResponse, exchange: Exchange, request: AttemptRequest, judge: HeadJudge, listener: AttemptListener): Attempt {
  const writer = new ResponseWriter(res, exchange, request, judge, listener);
  request.endpoint.inFlight++;
  return writer;
}
