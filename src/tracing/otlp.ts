/**
 * Finished requests as OTLP/HTTP JSON (opentelemetry-proto's JSON mapping:
 * hex trace and span ids, times as strings of Unix nanoseconds, enum values
 * as numbers). Runs in the exporter's batch, never on a request's path: a
 * request only hands over its record (observe/exchange.ts), and the span's
 * name and attributes are made here, from that record's fields.
 *
 * The SERVER span follows the OpenTelemetry HTTP semantic conventions: name
 * `{METHOD} {route}` (the route's name, never the raw path; `{METHOD}` alone
 * when no route matched), `http.request.method`, `http.response.status_code`,
 * `url.path`, `url.scheme`, `server.address`, `client.address`,
 * `client.port`, `network.protocol.version`, `user_agent.original`,
 * `http.request.resend_count` (tries beyond the first), and `error.type`: the
 * sidecar's own error code when it answered itself, else the status code of
 * a 5xx; status ERROR for a 5xx only (a 4xx is the client's doing). The
 * sidecar's own view is under `sidecar.*`. A CLIENT span per try (with
 * `upstreamSpans`) is named `{METHOD} {upstream}`.
 */
import type { AccessRecord } from '../observe/access-line.ts';
import type { TraceContext, TrySpan } from './context.ts';

/** What a span is made of: a finished request's record (an Exchange), read after it ended. */
export interface TracedRequest
  extends Pick<
    AccessRecord,
    'listener' | 'route' | 'method' | 'host' | 'path' | 'status' | 'error' | 'aborted' | 'durationMs' | 'clientAddress' | 'clientPort' | 'protocol' | 'userAgent' | 'upstream' | 'endpoint' | 'attempts' | 'reqId'
  > {
  readonly trace: TraceContext | undefined;
  /** performance.now() at the request's start. */
  readonly start: number;
}

export interface Resource {
  readonly serviceName: string;
  readonly serviceVersion: string;
}

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;
const STATUS_UNSET = 0;
const STATUS_ERROR = 2;

/** How many spans a request makes: its SERVER span and its CLIENT spans. */
export function spanCount(request: TracedRequest): number {
  return 1 + (request.trace?.tries?.length ?? 0);
}

/** One ExportTraceServiceRequest of `requests` (each sampled), as JSON text. */
export function exportRequest(requests: readonly TracedRequest[], resource: Resource): string {
  const spans: string[] = [];
  for (const request of requests) {
    const trace = request.trace;
    if (!trace) continue;
    spans.push(serverSpan(request, trace));
    trace.tries?.forEach((attempt, index) => spans.push(clientSpan(request, trace, attempt, index)));
  }
  const resourceAttributes = [
    text('service.name', resource.serviceName),
    text('service.version', resource.serviceVersion),
    text('telemetry.sdk.name', 'sidecar'),
    text('telemetry.sdk.language', 'nodejs'),
    int('process.pid', process.pid),
  ].join(',');
  return (
    `{"resourceSpans":[{"resource":{"attributes":[${resourceAttributes}]},` +
    `"scopeSpans":[{"scope":{"name":"sidecar","version":${str(resource.serviceVersion)}},"spans":[${spans.join(',')}]}]}]}`
  );
}

/*
 * The spans are written as JSON text by hand, as the access line is
 * (observe/access-line.ts): building an object per attribute and handing it
 * to JSON.stringify cost about 8 us per span on this machine, which made
 * tracing every request cost 17% more CPU per request (bench:ab); the keys are
 * fixed, and the values that repeat from span to span are escaped once.
 */

const str = JSON.stringify as (value: string) => string;

/** The JSON of the last few distinct values of a repeating field (method, route, host, ...), escaped once. */
const escaped = new Map<string, string>();

function quoted(value: string): string {
  let json = escaped.get(value);
  if (json === undefined) {
    if (escaped.size >= 1_000) escaped.clear();
    json = str(value);
    escaped.set(value, json);
  }
  return json;
}

function text(key: string, value: string): string {
  return `{"key":"${key}","value":{"stringValue":${quoted(value)}}}`;
}

/** A value that rarely repeats (a path, a request id): escaped, not remembered. */
function unique(key: string, value: string): string {
  return `{"key":"${key}","value":{"stringValue":${str(value)}}}`;
}

function int(key: string, value: number): string {
  return `{"key":"${key}","value":{"intValue":"${Math.trunc(value)}"}}`;
}

function serverSpan(request: TracedRequest, trace: TraceContext): string {
  const errorType = request.error ?? (request.status >= 500 ? String(request.status) : undefined);
  let attributes =
    text('http.request.method', request.method) +
    ',' + unique('url.path', request.path) +
    ',{"key":"url.scheme","value":{"stringValue":"http"}}' +
    ',' + text('server.address', request.host) +
    ',' + text('network.protocol.version', request.protocol) +
    ',' + text('sidecar.listener', request.listener) +
    ',' + text('sidecar.route', request.route) +
    ',' + unique('sidecar.request_id', request.reqId);
  if (request.status > 0) attributes += ',' + int('http.response.status_code', request.status);
  if (errorType !== undefined) attributes += ',' + text('error.type', errorType);
  if (request.attempts > 1) attributes += ',' + int('http.request.resend_count', request.attempts - 1);
  if (request.clientAddress !== undefined) attributes += ',' + text('client.address', request.clientAddress) + ',' + int('client.port', request.clientPort);
  if (request.userAgent !== undefined) attributes += ',' + text('user_agent.original', request.userAgent);
  if (request.upstream) attributes += ',' + text('sidecar.upstream', request.upstream);
  if (request.endpoint) attributes += ',' + text('sidecar.endpoint', request.endpoint);
  if (request.aborted) attributes += ',{"key":"sidecar.aborted","value":{"boolValue":true}}';
  const name = request.route ? `${request.method} ${request.route}` : request.method;
  const status = request.status >= 500 ? `{"code":${STATUS_ERROR}${errorType ? `,"message":${quoted(errorType)}` : ''}}` : `{"code":${STATUS_UNSET}}`;
  return (
    `{"traceId":"${trace.traceId}","spanId":"${trace.spanId}"` +
    (trace.parentSpanId ? `,"parentSpanId":"${trace.parentSpanId}"` : '') +
    `,"name":${quoted(name)},"kind":${SPAN_KIND_SERVER},"startTimeUnixNano":"${unixNanos(request.start)}","endTimeUnixNano":"${unixNanos(request.start + request.durationMs)}"` +
    `,"attributes":[${attributes}],"status":${status}}`
  );
}

function clientSpan(request: TracedRequest, trace: TraceContext, attempt: TrySpan, index: number): string {
  const errorType = attempt.error ?? (attempt.status >= 400 ? String(attempt.status) : undefined);
  const [address, port] = splitAuthority(attempt.endpoint);
  let attributes =
    text('http.request.method', request.method) +
    ',' + unique('url.full', attempt.url) +
    ',' + text('server.address', address) +
    ',' + text('sidecar.upstream', request.upstream) +
    ',' + text('sidecar.endpoint', attempt.endpoint);
  if (port !== undefined) attributes += ',' + int('server.port', port);
  if (attempt.status > 0) attributes += ',' + int('http.response.status_code', attempt.status);
  if (errorType !== undefined) attributes += ',' + text('error.type', errorType);
  if (index > 0) attributes += ',' + int('http.request.resend_count', index);
  // A client span is an error for any 4xx/5xx or failure (semantic conventions).
  const status = errorType !== undefined ? `{"code":${STATUS_ERROR},"message":${quoted(errorType)}}` : `{"code":${STATUS_UNSET}}`;
  return (
    `{"traceId":"${trace.traceId}","spanId":"${attempt.spanId}","parentSpanId":"${trace.spanId}"` +
    `,"name":${quoted(`${request.method} ${request.upstream}`)},"kind":${SPAN_KIND_CLIENT}` +
    `,"startTimeUnixNano":"${unixNanos(attempt.start)}","endTimeUnixNano":"${unixNanos(attempt.end > 0 ? attempt.end : request.start + request.durationMs)}"` +
    `,"attributes":[${attributes}],"status":${status}}`
  );
}

/**
 * performance.now() milliseconds as Unix nanoseconds, in text: past 2^53 a
 * number would lose the nanoseconds, so the whole milliseconds and the
 * nanoseconds below them are written side by side.
 */
export function unixNanos(performanceMs: number): string {
  const epochMs = performance.timeOrigin + performanceMs;
  const whole = Math.floor(epochMs);
  const fractionNs = Math.min(999_999, Math.round((epochMs - whole) * 1e6));
  return `${whole}${String(fractionNs).padStart(6, '0')}`;
}

/** `host:port` or `[v6]:port` -> [host, port]. */
function splitAuthority(authority: string): [string, number | undefined] {
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(authority);
  if (!match) return [authority, undefined];
  return [match[1].replace(/^\[|\]$/g, ''), match[2] === undefined ? undefined : Number(match[2])];
}
