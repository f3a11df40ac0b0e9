/**
 * What happened to one request, filled in along its path and written once at
 * its end as one access-log line and the request metrics (SPEC.md "Access
 * log"). Plain fields, no closures: this object is made for every request.
 */
import type { Socket } from 'node:net';
import type { ErrorCode, ProxyError } from '../core/errors.ts';
import type { ListenerName } from '../config/compile.ts';
import type { ResponseObserver } from '../net/observed-response.ts';
import type { ClientRequest, ClientResponse } from '../net/client.ts';
import { logAccess } from './log.ts';
import { tlsInfoOf } from '../tls/connection.ts';
import { recordError } from '../status/recent-errors.ts';
import type { TraceContext } from '../tracing/context.ts';
import { spanExporter } from '../tracing/exporter.ts';
import { badRequestsTotal, grpcResponsesTotal, requestDuration, requestsInFlight, requestsTotal } from './metrics.ts';

/**
 * The codes of requests refused as malformed, too large or too slow, whichever
 * layer caught them (Node's parser, the listener, a route's limit): they count
 * in `sidecar_bad_requests_total` too, like HAProxy's `ereq`.
 */
const BAD_REQUEST_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'bad_request',
  'request_timeout',
  'payload_too_large',
  'uri_too_long',
  'headers_too_large',
  'not_implemented',
]);

interface Series {
  readonly requests: { inc(): void };
  readonly duration: { observe(value: number): void };
}

/**
 * Labelled metric children, cached: prom-client hashes the label object on
 * every inc() otherwise. The set of label values is bounded by the config;
 * the cap only guards against a long life of reloads with changing names.
 */
const seriesCache = new Map<string, Series>();
const SERIES_CACHE_MAX = 10_000;

/** The labels of the last seriesOf call and its answer: under steady traffic most requests repeat them. */
let last:
  | { readonly listener: string; readonly route: string; readonly upstream: string; readonly method: string; readonly status: number; readonly protocol: string; readonly series: Series }
  | undefined;

function seriesOf(listener: ListenerName, route: string, upstream: string, method: string, status: number, protocol: string): Series {
  const previous = last;
  if (
    previous &&
    previous.status === status &&
    previous.route === route &&
    previous.method === method &&
    previous.upstream === upstream &&
    previous.listener === listener &&
    previous.protocol === protocol
  ) {
    return previous.series;
  }
  const series = cachedSeries(listener, route, upstream, method, status, protocol);
  last = { listener, route, upstream, method, status, protocol, series };
  return series;
}

function cachedSeries(listener: ListenerName, route: string, upstream: string, method: string, status: number, protocol: string): Series {
  const key = `${listener}\u0000${route}\u0000${upstream}\u0000${method}\u0000${status}\u0000${protocol}`;
  let series = seriesCache.get(key);
  if (!series) {
    if (seriesCache.size >= SERIES_CACHE_MAX) seriesCache.clear();
    series = {
      requests: requestsTotal.series({ listener, route, upstream, method, code: String(status), protocol }),
      duration: requestDuration.series({ listener, route, upstream }),
    };
    seriesCache.set(key, series);
  }
  return series;
}

/** The gRPC answers' series, cached like seriesCache (few: gRPC statuses are 17). */
const grpcCache = new Map<string, { inc(): void }>();

function grpcSeries(listener: ListenerName, route: string, upstream: string, status: number): { inc(): void } {
  const key = `${listener}\u0000${route}\u0000${upstream}\u0000${status}`;
  let series = grpcCache.get(key);
  if (!series) {
    if (grpcCache.size >= SERIES_CACHE_MAX) grpcCache.clear();
    series = grpcResponsesTotal.series({ listener, route, upstream, grpc_status: String(status) });
    grpcCache.set(key, series);
  }
  return series;
}

export type RetryStop = 'exhausted' | 'budget' | 'not_replayable' | 'body_too_large' | 'deadline';

/** What runs for the request and must stop when its client leaves (the proxy's flight). */
export interface ClientWatcher {
  clientGone(): void;
}

export class Exchange implements ResponseObserver {
  readonly start = performance.now();
  readonly listener: ListenerName;
  readonly reqId: string;
  readonly method: string;
  readonly host: string;
  /** The client's path without query, before any rewrite. */
  readonly path: string;
  /** Whether its end queues an access line (`log.access` of the snapshot the request took). */
  readonly accessLog: boolean;
  route = '';
  /** The upstream's name, as the access line gives it (host:port for an egress pass-through). */
  upstream = '';
  /** The upstream's metric label (see UpstreamState.metricLabel). */
  upstreamLabel = '';
  endpoint = '';
  status = 0;
  durationMs = 0;
  /** When it ended, in ms since the epoch. */
  endedAt = 0;
  bytesIn = 0;
  bytesOut = 0;
  attempts = 0;
  error: ErrorCode | undefined = undefined;
  retryStop: RetryStop | undefined = undefined;
  /** The response was cut after it had started (upstream died mid-body, client left). */
  aborted = false;
  /** Told when the client leaves before its response is complete; set while a proxied try runs. */
  watcher: ClientWatcher | undefined = undefined;
  clientAddress: string | undefined = undefined;
  clientPort = 0;
  userAgent: string | undefined = undefined;
  /** HTTP version of the client's request ("1.1", "2"); empty when the request was never parsed (a parser error). */
  protocol = '';
  /** HTTP version spoken to the upstream on the last try ("1.1", "2"); empty when no try was made. */
  upstreamProtocol = '';
  /** grpc-status of a gRPC answer: the upstream's (trailers-only head or trailers) or the sidecar's own. */
  grpcStatus: number | undefined = undefined;
  /** The TLS version of the client's connection ("TLSv1.3"); undefined on plain HTTP. */
  tls: string | undefined = undefined;
  /** The subject of the client's verified certificate (`clientAuth`); undefined without one. */
  clientCert: string | undefined = undefined;
  /** The traceparent sent upstream (headers.ts writes a created one back into the request's headers). */
  traceparent: string | undefined = undefined;
  /** The traceparent sent upstream was made by the sidecar (no client one): the access line need not check it. */
  traceparentCreated = false;
  /** Time from the start of the last try to the upstream's response head (ms); -1 when no head came. */
  upstreamHeaderMs = -1;
  /** Its place in a distributed trace, while tracing is on (tracing/context.ts). */
  trace: TraceContext | undefined = undefined;
  /** The sidecar's answer went straight to the socket (answeredRaw). */
  #answeredRaw = false;
  #done = false;

  constructor(listener: ListenerName, reqId: string, method: string, host: string, path: string, accessLog: boolean) {
    this.listener = listener;
    this.accessLog = accessLog;
    this.reqId = reqId;
    this.method = method;
    this.host = host;
    this.path = path;
    requestsInFlight[listener]++;
  }

  /** Records the upstream that serves this request. */
  setUpstream(upstream: { readonly name: string; readonly metricLabel: string }): void {
    this.upstream = upstream.name;
    this.upstreamLabel = upstream.metricLabel;
  }

  /**
   * Records who asked, from the client's request: the TCP peer, User-Agent,
   * HTTP version and traceparent. Read when the exchange ends (the
   * traceparent sent upstream is only known then), so the request itself is
   * never kept: the access log's batch holds Exchanges.
   */
  noteClient(req: ClientRequest): void {
    this.notePeer(req.socket);
    const headers = req.headers;
    this.userAgent = headers['user-agent'];
    const traceparent = headers.traceparent;
    this.traceparent = typeof traceparent === 'string' ? traceparent : undefined;
    this.protocol = req.httpVersion;
    const tls = tlsInfoOf(req.socket);
    if (tls) {
      this.tls = tls.protocol;
      this.clientCert = tls.clientSubject;
    }
  }

  /** Records the client's address and port (a socket that is already gone may no longer tell them). */
  notePeer(socket: Socket): void {
    this.clientAddress = socket.remoteAddress;
    this.clientPort = socket.remotePort ?? 0;
  }

  /**
   * The sidecar answered this request on the raw socket (Node's parser or a
   * timeout rejected the rest of it, see net/raw-answer.ts): the answer's
   * status and code stand, whatever the unfinished response says at its close.
   */
  answeredRaw(error: ProxyError, bodyBytes: number): void {
    this.#answeredRaw = true;
    this.status = error.status;
    this.error = error.code;
    this.bytesOut += bodyBytes;
  }

  /**
   * The client's response closed, complete or not (the listener's one 'close'
   * function calls this as the response's observer): records how it ended,
   * stops a running flight when the client left first, and finishes.
   */
  responseClosed(res: ClientResponse): void {
    const answeredRaw = this.#answeredRaw && !res.headersSent;
    if (!answeredRaw) this.status = res.headersSent ? res.statusCode : 499; // 499: the client left first (NGINX's code)
    if (!res.writableFinished) {
      this.watcher?.clientGone();
      // Cut, unless the sidecar's raw answer was the whole response (stopping the flight marks it cut).
      this.aborted = !answeredRaw;
    }
    if (this.accessLog || this.trace?.sampled) this.noteClient(res.req); // the access line and the span say who asked
    this.finish();
  }

  /** Writes the metrics and queues the access line (log.ts writes lines in batches); later calls do nothing. */
  finish(): void {
    if (this.#done) return;
    this.#done = true;
    const ms = performance.now() - this.start;
    this.durationMs = Math.round(ms * 100) / 100;
    requestsInFlight[this.listener]--;
    const series = seriesOf(this.listener, this.route, this.upstreamLabel, this.method, this.status, this.protocol);
    series.requests.inc();
    series.duration.observe(ms / 1000);
    if (this.grpcStatus !== undefined) grpcSeries(this.listener, this.route, this.upstreamLabel, this.grpcStatus).inc();
    if (this.error !== undefined) {
      if (BAD_REQUEST_CODES.has(this.error)) badRequestsTotal.inc({ listener: this.listener, code: this.error });
      recordError(this); // the status page's recent errors
    }
    if (this.trace?.sampled) spanExporter.add(this); // made into spans later, in the exporter's batch
    if (!this.accessLog) return;
    this.endedAt = Date.now();
    logAccess(this);
  }
}
