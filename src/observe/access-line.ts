/**
 * The access line, serialised by hand. Its keys are fixed (SPEC.md "Access
 * log"), so one template string does what pino's generic serialiser does
 * key by key: in a profile under load (wrk, 50 connections) pino's
 * `info(record)` cost about 12 us of CPU per request, more than the route,
 * the headers and the breaker together. The line is the one pino wrote
 * (`level`, `time`, `pid`, `log: "access"`, then the record), and it goes to
 * the same pino destination. Lines are formatted in batches (line-batch.ts).
 */

/** What one access line says (SPEC.md "Access log"). */
export interface AccessRecord {
  readonly reqId: string;
  readonly listener: string;
  readonly route: string;
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly status: number;
  readonly durationMs: number;
  /** When the exchange ended (ms since the epoch): the line's `time`. */
  readonly endedAt: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly upstream: string;
  readonly endpoint: string;
  readonly attempts: number;
  readonly error: string | undefined;
  readonly retryStop: string | undefined;
  readonly aborted: boolean;
  /** The TCP peer's address (the client, or the last proxy before us); undefined when unknown. */
  readonly clientAddress: string | undefined;
  /** The TCP peer's port; 0 when unknown. */
  readonly clientPort: number;
  readonly userAgent: string | undefined;
  /** HTTP version of the client's request ("1.1", "1.0", "2"); empty when the request was never parsed. */
  readonly protocol: string;
  /** HTTP version spoken to the upstream on the last try ("1.1", "2"); empty when nothing went upstream. */
  readonly upstreamProtocol?: string;
  /** grpc-status of a gRPC answer; undefined for anything else. */
  readonly grpcStatus?: number | undefined;
  /** TLS version of the client's connection ("TLSv1.3"); undefined on plain HTTP. */
  readonly tls?: string;
  /** Subject of the client's verified certificate; undefined without one. */
  readonly clientCert?: string;
  /** The traceparent sent upstream (or the client's, when nothing went upstream): the line shows its trace id. */
  readonly traceparent: string | undefined;
  /** The traceparent is one the sidecar made (proxy/headers.ts): valid by construction, its trace id needs no check. */
  readonly traceparentCreated?: boolean;
  /** With tracing on: the trace (its id wins over the traceparent's) and, when sampled, the sidecar's span id. */
  readonly trace?: { readonly traceId: string; readonly spanId: string; readonly sampled: boolean };
  /** Time from the start of the last try to the upstream's response head (ms); negative when no head came. */
  readonly upstreamHeaderMs: number;
}

/** The line's level: a 5xx stands out as `warn`, the sidecar's own failure (`internal_error`, a bug) as `error`. */
export function accessLevel(record: Pick<AccessRecord, 'status' | 'error'>): 'info' | 'warn' | 'error' {
  if (record.status < 500) return 'info';
  return record.error === 'internal_error' ? 'error' : 'warn';
}

const PREFIX = { info: `{"level":"info","time":"`, warn: `{"level":"warn","time":"`, error: `{"level":"error","time":"` } as const;
const PID = `","pid":${process.pid},"log":"access","reqId":`;

/** Client-supplied strings (path, host, request id) may hold quotes or control characters: JSON.stringify escapes them. */
const str = JSON.stringify as (value: string) => string;

/**
 * JSON of a field whose value mostly repeats from one line to the next
 * (user agent, TLS version, client certificate): the last value's JSON is
 * kept and reused (the runs of such fields, keys included: headFields() and
 * the like below). Comparing two short strings costs less than
 * escaping one; nine JSON.stringify calls were about 0.6 us of the 1.1 us a
 * line took to format (a loop over 128 records on this machine).
 */
class RepeatedField {
  #value = '';
  #json = '""';

  json(value: string): string {
    if (value !== this.#value) {
      this.#value = value;
      this.#json = str(value);
    }
    return this.#json;
  }
}

const userAgentField = new RepeatedField();
const tlsField = new RepeatedField();
const clientCertField = new RepeatedField();

/** W3C trace-context: version, 32 hex trace id, 16 hex parent id, flags (a later version may add fields after a dash). */
const TRACEPARENT = /^(?!ff)[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(?:-|$)/;

/** The trace id of a traceparent header; undefined when the value is not a valid one. */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  if (traceparent === undefined || traceparent.length < 55 || !TRACEPARENT.test(traceparent)) return undefined;
  return traceparent.slice(3, 35);
}

/**
 * A duration in ms with at most two decimals, as JSON writes that number
 * (1.5, not 1.50; 2, not 2.00), from integer arithmetic: turning a fraction
 * into its shortest decimal form cost about 0.3 us per line.
 */
export function hundredthsJson(ms: number): string {
  const hundredths = Math.round(ms * 100);
  if (!(hundredths >= 0 && hundredths < Number.MAX_SAFE_INTEGER)) return String(ms);
  const whole = Math.floor(hundredths / 100);
  const fraction = hundredths - whole * 100;
  if (fraction === 0) return String(whole);
  if (fraction % 10 === 0) return `${whole}.${fraction / 10}`;
  return fraction < 10 ? `${whole}.0${fraction}` : `${whole}.${fraction}`;
}

/** The ISO time of the last line, reused by the lines of the same millisecond. */
let isoAt = -1;
let iso = '';

function isoTime(epochMs: number): string {
  if (epochMs !== isoAt) {
    isoAt = epochMs;
    iso = new Date(epochMs).toISOString();
  }
  return iso;
}

/**
 * The run of fields that repeat from one line to the next under steady
 * traffic (listener, route, method, host, path, protocol), keys included, as
 * one string kept while they repeat (and the same for upstream and endpoint,
 * and the client's address): a line is about twenty pieces instead of forty.
 * Formatting 128 records went from 0.57 to 0.43 us per line (best of 8 runs).
 */
let headKey: readonly [string, string, string, string, string, string] | undefined;
let headJson = '';

function headFields(listener: string, route: string, method: string, host: string, path: string, protocol: string): string {
  const key = headKey;
  if (key !== undefined && key[4] === path && key[3] === host && key[1] === route && key[2] === method && key[0] === listener && key[5] === protocol) return headJson;
  headKey = [listener, route, method, host, path, protocol];
  headJson = `,"listener":${str(listener)},"route":${str(route)},"method":${str(method)},"host":${str(host)},"path":${str(path)},"protocol":${str(protocol)},"status":`;
  return headJson;
}

let upstreamKey = '';
let endpointKey = '';
let upstreamJson = ',"upstream":"","endpoint":"","attempts":';

function upstreamFields(upstream: string, endpoint: string): string {
  if (upstream !== upstreamKey || endpoint !== endpointKey) {
    upstreamKey = upstream;
    endpointKey = endpoint;
    upstreamJson = `,"upstream":${str(upstream)},"endpoint":${str(endpoint)},"attempts":`;
  }
  return upstreamJson;
}

let clientKey = '';
let clientJson = ',"clientAddress":"","clientPort":';

function clientFields(address: string): string {
  if (address !== clientKey) {
    clientKey = address;
    clientJson = `,"clientAddress":${str(address)},"clientPort":`;
  }
  return clientJson;
}

/**
 * One JSON line, newline included; keys with no value are left out, as pino
 * leaves out undefined. The client, protocol, trace id and upstream head time
 * (issue 23) took a line from 0.46 to 0.85 us to format (a loop over 128
 * records, best of 8 runs), 0.24 us of it the traceparent's check: about 0.5%
 * of a proxied request's CPU, below what `bench:ab` can tell.
 */
export function accessLine(record: AccessRecord): string {
  let line =
    PREFIX[accessLevel(record)] +
    isoTime(record.endedAt) +
    PID +
    str(record.reqId) +
    headFields(record.listener, record.route, record.method, record.host, record.path, record.protocol) +
    record.status +
    ',"durationMs":' +
    hundredthsJson(record.durationMs);
  if (record.upstreamHeaderMs >= 0) line += ',"upstreamHeaderMs":' + hundredthsJson(record.upstreamHeaderMs);
  line += ',"bytesIn":' + record.bytesIn + ',"bytesOut":' + record.bytesOut + upstreamFields(record.upstream, record.endpoint) + record.attempts;
  if (record.clientAddress !== undefined) line += clientFields(record.clientAddress) + record.clientPort;
  if (record.userAgent !== undefined) line += `,"userAgent":${userAgentField.json(record.userAgent)}`;
  if (record.upstreamProtocol) line += `,"upstreamProtocol":"${record.upstreamProtocol}"`;
  if (record.grpcStatus !== undefined) line += `,"grpcStatus":${record.grpcStatus}`;
  if (record.tls !== undefined) line += `,"tls":${tlsField.json(record.tls)}`;
  if (record.clientCert !== undefined) line += `,"clientCert":${clientCertField.json(record.clientCert)}`;
  const trace = record.trace;
  // A client's traceparent is checked (0.3 us per line, a regexp); one the sidecar made is valid as made.
  const traceId = trace ? trace.traceId : record.traceparentCreated && record.traceparent !== undefined ? record.traceparent.slice(3, 35) : traceIdOf(record.traceparent);
  if (traceId !== undefined) line += `,"traceId":"${traceId}"`;
  if (trace?.sampled) line += `,"spanId":"${trace.spanId}"`;
  if (record.error !== undefined) line += `,"error":${str(record.error)}`;
  if (record.retryStop !== undefined) line += `,"retryStop":${str(record.retryStop)}`;
  if (record.aborted) line += `,"aborted":true`;
  return line + '}\n';
}
