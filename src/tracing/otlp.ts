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
import type { TraceContext } from './context.ts';

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

type AnyValue = { stringValue: string } | { intValue: string } | { boolValue: boolean };
interface KeyValue {
  key: string;
  value: AnyValue;
}

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;
const STATUS_UNSET = 0;
const STATUS_ERROR = 2;

/** How many spans a request makes: its SERVER span and its CLIENT spans. */
export function spanCount(request: TracedRequest): number {
  return 1 + (request.trace?.tries?.length ?? 0);
}

/** One ExportTraceServiceRequest of `requests` (each sampled). */
export function exportRequest(requests: readonly TracedRequest[], resource: Resource): string {
  const spans: unknown[] = [];
  for (const request of requests) {
    const trace = request.trace;
    if (!trace) continue;
    spans.push(serverSpan(request, trace));
    for (const attempt of trace.tries ?? []) spans.push(clientSpan(request, trace, attempt, trace.tries!.indexOf(attempt)));
  }
  return JSON.stringify({
    resourceSpans: [
      {
        resource: {
          attributes: [
            attribute('service.name', resource.serviceName),
            attribute('service.version', resource.serviceVersion),
            attribute('telemetry.sdk.name', 'sidecar'),
            attribute('telemetry.sdk.language', 'nodejs'),
            attribute('process.pid', process.pid),
          ],
        },
        scopeSpans: [{ scope: { name: 'sidecar', version: resource.serviceVersion }, spans }],
      },
    ],
  });
}

function serverSpan(request: TracedRequest, trace: TraceContext): unknown {
  const errorType = request.error ?? (request.status >= 500 ? String(request.status) : undefined);
  const attributes = [
    attribute('http.request.method', request.method),
    attribute('url.path', request.path),
    attribute('url.scheme', 'http'),
    attribute('server.address', request.host),
    attribute('network.protocol.version', request.protocol),
    attribute('sidecar.listener', request.listener),
    attribute('sidecar.route', request.route),
    attribute('sidecar.request_id', request.reqId),
  ];
  if (request.status > 0) attributes.push(attribute('http.response.status_code', request.status));
  if (errorType !== undefined) attributes.push(attribute('error.type', errorType));
  if (request.attempts > 1) attributes.push(attribute('http.request.resend_count', request.attempts - 1));
  if (request.clientAddress !== undefined) attributes.push(attribute('client.address', request.clientAddress), attribute('client.port', request.clientPort));
  if (request.userAgent !== undefined) attributes.push(attribute('user_agent.original', request.userAgent));
  if (request.upstream) attributes.push(attribute('sidecar.upstream', request.upstream));
  if (request.endpoint) attributes.push(attribute('sidecar.endpoint', request.endpoint));
  if (request.aborted) attributes.push(attribute('sidecar.aborted', true));
  return {
    traceId: trace.traceId,
    spanId: trace.spanId,
    ...(trace.parentSpanId ? { parentSpanId: trace.parentSpanId } : {}),
    name: request.route ? `${request.method} ${request.route}` : request.method,
    kind: SPAN_KIND_SERVER,
    startTimeUnixNano: unixNanos(request.start),
    endTimeUnixNano: unixNanos(request.start + request.durationMs),
    attributes,
    status: request.status >= 500 ? { code: STATUS_ERROR, ...(errorType ? { message: errorType } : {}) } : { code: STATUS_UNSET },
  };
}

function clientSpan(request: TracedRequest, trace: TraceContext, attempt: NonNullable<TraceContext['tries']>[number], index: number): unknown {
  const errorType = attempt.error ?? (attempt.status >= 400 ? String(attempt.status) : undefined);
  const [address, port] = splitAuthority(attempt.endpoint);
  const attributes = [
    attribute('http.request.method', request.method),
    attribute('url.full', attempt.url),
    attribute('server.address', address),
    attribute('sidecar.upstream', request.upstream),
    attribute('sidecar.endpoint', attempt.endpoint),
  ];
  if (port !== undefined) attributes.push(attribute('server.port', port));
  if (attempt.status > 0) attributes.push(attribute('http.response.status_code', attempt.status));
  if (errorType !== undefined) attributes.push(attribute('error.type', errorType));
  if (index > 0) attributes.push(attribute('http.request.resend_count', index));
  return {
    traceId: trace.traceId,
    spanId: attempt.spanId,
    parentSpanId: trace.spanId,
    name: `${request.method} ${request.upstream}`,
    kind: SPAN_KIND_CLIENT,
    startTimeUnixNano: unixNanos(attempt.start),
    endTimeUnixNano: unixNanos(attempt.end > 0 ? attempt.end : request.start + request.durationMs),
    attributes,
    // A client span is an error for any 4xx/5xx or failure (semantic conventions).
    status: errorType !== undefined ? { code: STATUS_ERROR, message: errorType } : { code: STATUS_UNSET },
  };
}

function attribute(key: string, value: string | number | boolean): KeyValue {
  if (typeof value === 'string') return { key, value: { stringValue: value } };
  if (typeof value === 'boolean') return { key, value: { boolValue: value } };
  return { key, value: { intValue: String(Math.trunc(value)) } };
}

/** performance.now() milliseconds as Unix nanoseconds, in text: past 2^53 a number would lose the nanoseconds. */
export function unixNanos(performanceMs: number): string {
  const epochMs = performance.timeOrigin + performanceMs;
  const whole = Math.floor(epochMs);
  const fractionNs = Math.round((epochMs - whole) * 1e6);
  return (BigInt(whole) * 1_000_000n + BigInt(Math.min(fractionNs, 999_999))).toString();
}

/** `host:port` or `[v6]:port` -> [host, port]. */
function splitAuthority(authority: string): [string, number | undefined] {
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(authority);
  if (!match) return [authority, undefined];
  return [match[1].replace(/^\[|\]$/g, ''), match[2] === undefined ? undefined : Number(match[2])];
}
