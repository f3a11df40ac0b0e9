/**
 * A routed request, from the chosen route to the client's response: the
 * attempt loop. Each try picks an endpoint (balance policy, healthy and not
 * ejected, a different one from the last try when there is one), goes through
 * the upstream's circuit breaker, and runs through forward.ts. A try that
 * failed before anything reached the client may be tried again (retry.ts
 * decides); once response bytes left, the outcome is final. Shared by ingress
 * and egress; what differs (Host, path) arrives in `ProxyTarget`.
 *
 * The loop is a chain of callbacks, not an async function: the try's end
 * (forward.ts) reaches the flight, which the breaker counts it for and which
 * decides what comes next. Under load (wrk, 50 connections) the async frames
 * and the promises per try (the loop's, the try's, the breaker's) were about
 * a tenth of what the sidecar spent above the bare undici floor. A retry
 * still starts from a fresh stack (a microtask, or the backoff's timer), as it
 * did after an `await`: never inside the callback of the try that failed.
 */
import type { ClientRequest, ClientResponse } from '../net/client.ts';
import type { CompiledRoute } from '../config/compile.ts';
import type { ClientWatcher, Exchange } from '../observe/exchange.ts';
import { retryStopsTotal, upstreamRetriesTotal } from '../observe/metrics.ts';
import type { EndpointState, UpstreamState } from '../upstream/state.ts';
import { isReusedSocketReset } from '../upstream/reuse.ts';
import { requestBody, type RequestBody } from './body.ts';
import { ProxyError } from '../core/errors.ts';
import { refuse } from '../net/error-answer.ts';
import { makeAttempt, type Attempt, type AttemptListener, type AttemptOutcome, type HeadJudge } from './forward.ts';
import type { BreakerCall, TryReport } from '../upstream/breaker.ts';
import { upstreamRequestHeaders } from './headers.ts';
import { isTrustedPeer } from '../net/trusted-proxies.ts';
import { tlsInfoOf } from '../tls/connection.ts';
import type { TLSSocket } from 'node:tls';
import { IDEMPOTENT_METHODS, RetryPlan, conditionOf, type RetryCondition, type Verdict } from './retry.ts';
import { formatGrpcTimeout, grpcRetryName, grpcStatusOf, isFailureStatus, isGrpcCall, parseGrpcTimeout } from '../h2/grpc.ts';
import { isRefusedStream, protocolMismatch, speaksH2 } from '../h2/upstream.ts';
import type { Admission } from '../policy/chain.ts';

/** Where and how the request goes. */
export interface ProxyTarget {
  readonly upstream: UpstreamState;
  /** Path and query sent upstream (after rewrite). */
  readonly path: string;
  /** Host header sent upstream; undefined = the endpoint's host:port. */
  readonly host: string | undefined;
  /** Host the client asked for (X-Forwarded-Host). */
  readonly originalHost: string | undefined;
}

/** Body kept for the one retry after a reused connection's reset, on routes without `retry` (the retry default). */
const DEFAULT_KEEP_BODY = 64 * 1024;

/** Applies `rewrite.stripPrefix` to a path with query. */
export function rewritePath(url: string, route: CompiledRoute): string {
  const prefix = route.stripPrefix;
  if (!prefix || !url.startsWith(prefix)) return url;
  const rest = url.slice(prefix.length);
  return rest.startsWith('/') ? rest : `/${rest}`;
}

/**
 * The headers of one try on `endpoint` (headers.ts) with `route`'s request
 * rules and trusted proxies, for a proxied request and a WebSocket upgrade
 * (upgrade/relay.ts, `keepUpgrade`) alike; `traceparent` is what tracing sends (tracing/context.ts),
 * `grpcTimeout` what is left of a gRPC call's deadline.
 */
export function tryHeaders(
  req: ClientRequest,
  target: ProxyTarget,
  endpoint: EndpointState,
  requestId: string,
  route: CompiledRoute,
  keepUpgrade: boolean,
  traceparent?: string,
  grpcTimeout?: string,
): string[] {
  const clientAddress = req.socket.remoteAddress;
  const certHeader = route.clientCertHeader;
  const info = {
    host: target.host ?? endpoint.authority,
    clientAddress,
    trusted: isTrustedPeer(route.trustedProxies, clientAddress),
    proto: (req.socket as TLSSocket).encrypted ? 'https' : 'http',
    originalHost: target.originalHost,
    requestId,
    keepUpgrade,
    clientCert: certHeader === undefined ? undefined : { header: certHeader, value: tlsInfoOf(req.socket)?.clientCertHeader },
    traceparent,
    teTrailers: req.headers.te !== undefined && speaksH2(endpoint) && req.headers.te.includes('trailers'),
    grpcTimeout,
  } as const;
  return upstreamRequestHeaders(req.rawHeaders, req.headers, info, route.requestHeaders);
}

/**
 * How much of the body to keep for a retry; 0 when this request can never be
 * retried. To an HTTP/2 upstream any method may go again once, when the
 * upstream refuses the stream unprocessed (isRefusedStream).
 */
function keepLimit(route: CompiledRoute, method: string, grpc: boolean, h2Upstream: boolean): number {
  if (route.retry && (RetryPlan.replayableMethod(route.retry, method) || (grpc && RetryPlan.namesGrpcCode(route.retry)))) return route.retry.bufferBody;
  return IDEMPOTENT_METHODS.has(method) || h2Upstream ? DEFAULT_KEEP_BODY : 0;
}

/** What the breaker and outlier ejection count as the upstream's failure (SPEC "Breaker failures"). */
function upstreamFailed(outcome: AttemptOutcome, grpcStatus: number | undefined): boolean {
  return failureOf(outcome, grpcStatus) !== undefined;
}

/**
 * Why a try counts as the upstream's failure (an error code, `HTTP 5xx`, or
 * `grpc-status N` for DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE under an HTTP
 * 200); undefined when it does not.
 */
function failureOf(outcome: AttemptOutcome, grpcStatus: number | undefined): string | undefined {
  switch (outcome.kind) {
    case 'failed':
      return outcome.error.code === 'payload_too_large' ? undefined : outcome.error.code;
    case 'broken':
      return 'upstream_reset'; // cut mid-response by the upstream (a client that left is filtered out by the caller)
    default:
      if (outcome.status >= 500) return `HTTP ${outcome.status}`;
      return isFailureStatus(grpcStatus) ? `grpc-status ${grpcStatus}` : undefined;
  }
}


/** How a flight ends: once the exchange is over, or when the sidecar itself failed (a bug: the caller answers 500). */
export interface FlightEnd {
  flightEnded(): void;
  flightCrashed(err: unknown, res: ClientResponse, exchange: Exchange): void;
}

/**
 * One request's journey through its tries. The listener's one 'close'
 * function tells it when the client leaves (`Exchange.responseClosed` calls
 * `clientGone()`), so a request registers no listener of its own.
 *
 * Plain fields rather than an AbortController: this runs for every request,
 * and an AbortSignal with a listener per try cost about 5 us of CPU per
 * request under load (wrk, 50 connections, sidecar pinned to one core). The
 * running attempt is kept itself, not a closure over it: with a per-try
 * closure stored here, V8 promoted whole requests to old space (`--trace-gc`:
 * 8 KB per request, a full GC every second, 60 MB more RSS; the cause was not
 * pinned down further, so keep closures out of the flight). Following that
 * rule, the flight itself is what the breaker runs (`BreakerCall`), what
 * hears a try's end (`AttemptListener`, `TryReport`) and what judges a
 * response head (`HeadJudge`): a try makes no closures of its own.
 */
class Flight implements ClientWatcher, BreakerCall<AttemptOutcome>, TryReport<AttemptOutcome>, AttemptListener, HeadJudge {
  readonly req: ClientRequest;
  readonly res: ClientResponse;
  readonly route: CompiledRoute;
  readonly target: ProxyTarget;
  readonly exchange: Exchange;
  readonly body: RequestBody;
  /** The retry decisions, made on the first failure (most requests have none). */
  #plan: RetryPlan | undefined = undefined;
  readonly deadline: number;
  /** Endpoints tried before the try under way, made on the first retry (most requests have one try). */
  tried: Set<EndpointState> | undefined = undefined;
  /** The client left before its response was complete. */
  gone = false;
  /** The try under way, cancelled when the client leaves. */
  running: Attempt | undefined = undefined;
  /** Where the try under way reports its end: the breaker, or the flight itself. */
  report: TryReport<AttemptOutcome> | undefined = undefined;
  /** The backoff under way before a retry, ended early when the client leaves. */
  backoffTimer: NodeJS.Timeout | undefined = undefined;
  /** The endpoint of the try under way. */
  endpoint: EndpointState | undefined = undefined;
  /** The retry verdict on a response head refused for a retry (set by acceptHead). */
  headVerdict: Verdict | undefined = undefined;
  /** What the route's policies said of the request head (headers for every answer, a response filter). */
  readonly admission: Admission | undefined;
  /** A gRPC call (h2/grpc.ts): its deadline goes upstream in grpc-timeout, gRPC statuses may be retried. */
  readonly grpc: boolean;
  readonly #end: FlightEnd;
  #over = false;

  constructor(
    req: ClientRequest,
    res: ClientResponse,
    route: CompiledRoute,
    target: ProxyTarget,
    exchange: Exchange,
    deadline: number,
    admission: Admission | undefined,
    grpc: boolean,
    end: FlightEnd,
  ) {
    const method = req.method ?? 'GET';
    this.admission = admission;
    this.grpc = grpc;
    this.req = req;
    this.res = res;
    this.route = route;
    this.target = target;
    this.exchange = exchange;
    this.deadline = deadline;
    this.#end = end;
    const first = target.upstream.endpoints[0];
    this.body = requestBody(req, exchange, route.maxBody, keepLimit(route, method, grpc, first !== undefined && speaksH2(first)));
  }

  get plan(): RetryPlan {
    return (this.#plan ??= new RetryPlan({ policy: this.route.retry, method: this.req.method ?? 'GET', deadline: this.deadline, budget: this.target.upstream.budget, grpc: this.grpc }));
  }

  clientGone(): void {
    this.gone = true;
    this.running?.cancel(new Error('client closed the connection'));
    if (this.backoffTimer !== undefined) {
      clearTimeout(this.backoffTimer);
      this.backoffTimer = undefined;
      this.resume();
    }
  }

  /**
   * A head whose status the route retries on is refused while a retry is
   * still possible; for a gRPC call, also a trailers-only head whose
   * grpc-status `retry.on` names (nothing has reached the client yet).
   */
  acceptHead(status: number, headers: Record<string, string | string[] | undefined>): boolean {
    const retry = this.route.retry;
    if (!retry) return true;
    let condition: RetryCondition | undefined = retry.on.includes(status) ? status : undefined;
    if (condition === undefined && this.grpc) {
      const grpcStatus = grpcStatusOf(headers);
      const name = grpcStatus === undefined ? undefined : grpcRetryName(grpcStatus);
      if (name !== undefined && retry.on.includes(name)) condition = name;
    }
    if (condition === undefined) return true;
    const failure = { condition, reusedReset: false, retryAfter: headers['retry-after'] };
    this.headVerdict = this.plan.next(failure, this.body.replayable, performance.now());
    return !this.headVerdict.retry;
  }

  /** The next try (or the end, when the client left meanwhile); what throws ends the flight as a crash. */
  resume(): void {
    try {
      if (this.gone) this.finish(undefined);
      else this.next();
    } catch (err) {
      this.crash(err);
    }
  }

  /** Picks an endpoint and tries it, through the upstream's breaker when it has one. */
  next(): void {
    const upstream = this.target.upstream;
    const last = this.endpoint;
    if (last !== undefined) (this.tried ??= new Set()).add(last);
    // The first pick goes by the request's arrival time, a retry's by the clock (an ejection may have ended meanwhile).
    const endpoint = upstream.pick(this.tried, this.tried === undefined ? this.exchange.start : performance.now());
    if (!endpoint) return this.finish(new ProxyError('no_healthy_endpoint'));
    this.endpoint = endpoint;
    this.headVerdict = undefined;
    const breaker = upstream.breaker;
    if (breaker) breaker.attempt(this);
    else this.start(this);
  }

  /** Starts one try on `this.endpoint` (the breaker calls this when it lets the try through); its end goes to `report`. */
  start(report: TryReport<AttemptOutcome>): void {
    const { req, route, target, exchange } = this;
    const endpoint = this.endpoint!;
    this.report = report;
    exchange.attempts++;
    exchange.endpoint = endpoint.shownAuthority;
    // A gRPC call's upstream learns how long it has left (the deadline is the smaller of the route's and the client's).
    const now = performance.now();
    const grpcTimeout = this.grpc && this.deadline !== Infinity ? formatGrpcTimeout(this.deadline - now) : undefined;
    const fresh = !req.headers.traceparent;
    const headers = tryHeaders(req, target, endpoint, exchange.reqId, route, false, exchange.trace?.upstreamTraceparent(endpoint, target.path), grpcTimeout);
    // headers.ts made one and kept it on the request (without tracing): the access line may trust it.
    if (fresh && req.headers.traceparent) exchange.traceparentCreated = true;
    const attempt = makeAttempt(
      this.res,
      exchange,
      {
        endpoint,
        method: req.method ?? 'GET',
        path: target.path,
        headers,
        body: this.body.forAttempt(),
        startedAt: now,
        headTimeout: headTimeout(this, now),
        bodyIdleTimeout: route.idleTimeout,
        responseRules: route.responseHeaders,
        extraResponseHeaders: extraHeaders(this),
        responseFilter: this.admission?.response,
      },
      this,
      this,
    );
    // Kept before it is sent: its end may come before dispatch() returns.
    this.running = attempt;
    // A client that leaves aborts the upstream request at once.
    if (this.gone) attempt.cancel(new Error('client closed the connection'));
    else attempt.dispatch();
  }

  /** The try's end, from forward.ts: to the breaker (or straight to ended()). */
  attemptEnded(outcome: AttemptOutcome): void {
    this.running = undefined;
    this.report!.tryEnded(this, outcome);
  }

  /** The try's end when the upstream has no breaker. */
  tryEnded(_call: BreakerCall<AttemptOutcome>, outcome: AttemptOutcome): void {
    this.ended(outcome);
  }

  /** What the breaker counts against the upstream; a client that left is nobody's failure. */
  failed(outcome: AttemptOutcome): boolean {
    return !this.gone && upstreamFailed(outcome, this.exchange.grpcStatus);
  }

  /** The breaker made no try: circuit_open, overloaded (or what start() threw). */
  refused(error: unknown): void {
    if (error instanceof ProxyError) this.finish(error);
    else this.crash(error);
  }

  /** A try is over (and counted): the end, or a retry. */
  ended(outcome: AttemptOutcome): void {
    try {
      afterTry(this, outcome);
    } catch (err) {
      this.crash(err);
    }
  }

  /** The flight is over; `error` is the sidecar's answer when no response was relayed. */
  finish(error: ProxyError | undefined): void {
    if (this.#over) return;
    try {
      if (error) answer(this, error);
    } catch (err) {
      return this.crash(err);
    }
    this.#over = true;
    this.#tidy();
    this.#end.flightEnded();
  }

  crash(err: unknown): void {
    if (this.#over) return;
    this.#over = true;
    this.#tidy();
    this.#end.flightCrashed(err, this.res, this.exchange);
  }

  #tidy(): void {
    // Not only tidiness: the access log's batch holds Exchanges, and a kept
    // watcher would keep the whole request (req, res, body) alive with them
    // (without this line: peak RSS 134 -> 174 MB, +2 us of CPU per request).
    this.exchange.watcher = undefined;
    // A connection that closes after this answer needs nothing more read.
    if (!this.req.complete && this.res.shouldKeepAlive) discardRest(this.req);
  }
}

/** What ends a flight of proxyRequest(): its promise. */
class PromisedEnd implements FlightEnd {
  readonly #resolve: () => void;
  readonly #reject: (err: unknown) => void;
  constructor(resolve: () => void, reject: (err: unknown) => void) {
    this.#resolve = resolve;
    this.#reject = reject;
  }
  flightEnded(): void {
    this.#resolve();
  }
  flightCrashed(err: unknown): void {
    this.#reject(err);
  }
}

/**
 * Forwards one request to its upstream and writes the answer; resolves when
 * the exchange is over. `admission` is what the route's policies made of the
 * request (policy/chain.ts), already admitted.
 */
export function proxyRequest(
  req: ClientRequest,
  res: ClientResponse,
  route: CompiledRoute,
  target: ProxyTarget,
  exchange: Exchange,
  admission?: Admission,
): Promise<void> {
  return new Promise((resolve, reject) => forwardRequest(req, res, route, target, exchange, admission, new PromisedEnd(resolve, reject)));
}

/**
 * proxyRequest() without a promise: `end` hears when the exchange is over
 * (the ingress listener, which has nothing to do then, passes one object for
 * all its requests).
 */
export function forwardRequest(
  req: ClientRequest,
  res: ClientResponse,
  route: CompiledRoute,
  target: ProxyTarget,
  exchange: Exchange,
  admission: Admission | undefined,
  end: FlightEnd,
): void {
  let flight: Flight;
  try {
    exchange.setUpstream(target.upstream);
    const declared = Number(req.headers['content-length'] ?? 0);
    if (route.maxBody > 0 && declared > route.maxBody) {
      res.shouldKeepAlive = false; // the unread body would otherwise be read and thrown away
      refuse(res, exchange, new ProxyError('payload_too_large'), admission?.headers);
      return end.flightEnded();
    }
    const grpc = isGrpcCall(req.headers);
    if (grpc) {
      const mismatch = protocolMismatch(req, target);
      if (mismatch) {
        refuse(res, exchange, mismatch, admission?.headers);
        return end.flightEnded();
      }
    }
    // grpc-timeout bounds the route timeout: the smaller wins (SPEC "HTTP/2 and gRPC").
    const clientDeadline = grpc ? parseGrpcTimeout(req.headers['grpc-timeout']) : undefined;
    const budget = Math.min(route.timeout > 0 ? route.timeout : Infinity, clientDeadline ?? Infinity);
    const deadline = budget === Infinity ? Infinity : exchange.start + budget;
    target.upstream.budget.deposit(exchange.start); // the request's arrival: no clock read of its own
    flight = new Flight(req, res, route, target, exchange, deadline, admission, grpc, end);
  } catch (err) {
    return end.flightCrashed(err, res, exchange);
  }
  exchange.watcher = flight;
  flight.resume();
}

/**
 * Reads and drops what is left of a request body nobody will send on (the
 * upstream answered before reading it all, or the tries ended): otherwise the
 * client, still sending, could never get its next request on this connection
 * read. node:http does the same for a body its handler never reads, but not
 * for one that was being read. The server's requestTimeout still bounds it.
 */
function discardRest(req: ClientRequest): void {
  req.unpipe();
  req.resume();
}

/** After a try: report it, then end the flight or start a retry (never from inside the try's own callbacks). */
function afterTry(flight: Flight, outcome: AttemptOutcome): void {
  const upstream = flight.target.upstream;
  const endpoint = flight.endpoint!;
  if (outcome.kind === 'failed') flight.exchange.trace?.endTry(0, outcome.error.code);
  else flight.exchange.trace?.endTry(outcome.status, outcome.kind === 'broken' ? 'response_cut' : undefined);
  if (flight.gone) return flight.finish(undefined); // the client left: nothing to answer, nothing to blame the endpoint for
  const why = failureOf(outcome, flight.exchange.grpcStatus);
  if (why !== undefined) endpoint.noteFailure(why);
  upstream.report(endpoint, why !== undefined);

  let verdict = flight.headVerdict;
  if (outcome.kind === 'done' || outcome.kind === 'broken') {
    noteStop(flight, verdict);
    return flight.finish(undefined);
  }
  if (outcome.kind === 'failed') {
    const failure = {
      condition: conditionOf(outcome.error.code),
      reusedReset: isReusedSocketReset(outcome.error.cause),
      refused: isRefusedStream(outcome.error.cause),
    };
    verdict = flight.plan.next(failure, flight.body.replayable, performance.now());
    if (!verdict.retry) {
      noteStop(flight, verdict);
      return flight.finish(outcome.error);
    }
  }
  // Here the verdict is a retry: `rejected` happens only when acceptHead() decided one.
  if (!verdict?.retry) throw new Error('a refused response without a retry verdict');
  upstreamRetriesTotal.inc({ upstream: upstream.metricLabel, reason: verdict.reason });
  if (verdict.delayMs > 0) flight.backoffTimer = setTimeout(backoffOver, verdict.delayMs, flight);
  else queueMicrotask(() => flight.resume());
}

/** The wait before a retry is over (clientGone() ends it early). */
function backoffOver(flight: Flight): void {
  flight.backoffTimer = undefined;
  flight.resume();
}

/**
 * Time this try may wait for the response head: perTryTimeout, within what is
 * left of the route timeout (0 = none), in whole milliseconds. Whole, because
 * Node keeps one timer list per distinct duration: a fractional duration (what
 * is left of the deadline) made a new list for every request, filed in a
 * priority queue and removed again when the head arrived.
 */
function headTimeout(flight: Flight, now: number): number {
  const perTry = flight.route.retry?.perTryTimeout ?? 0;
  const limit = Math.min(perTry > 0 ? perTry : Infinity, flight.deadline - now);
  return limit === Infinity ? 0 : Math.max(1, Math.ceil(limit));
}

/** Records why retries ended, when a retry policy applied and the last try failed. */
function noteStop(flight: Flight, verdict: Verdict | undefined): void {
  if (!verdict || verdict.retry || verdict.stop === undefined) return;
  flight.exchange.retryStop = verdict.stop;
  retryStopsTotal.inc({ upstream: flight.target.upstream.metricLabel, reason: verdict.stop });
}

/** The sidecar's own answer, with x-sidecar-attempts when more than one try was made. */
function answer(flight: Flight, error: ProxyError): void {
  const { res, exchange } = flight;
  if (error.code === 'payload_too_large') res.shouldKeepAlive = false;
  if (res.destroyed) {
    exchange.error = error.code;
    return;
  }
  refuse(res, exchange, error, extraHeaders(flight));
}

/**
 * Headers on every answer, the upstream's and ours alike: `x-sidecar-attempts`
 * when more than one try was made, and the policies' (RateLimit).
 */
function extraHeaders(flight: Flight): Record<string, string> | undefined {
  const policies = flight.admission?.headers;
  const attempts = flight.exchange.attempts;
  if (attempts <= 1) return policies;
  return { ...policies, 'x-sidecar-attempts': String(attempts) };
}
