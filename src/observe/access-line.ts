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
}

const PREFIX = `{"level":"info","time":"`;
const PID = `","pid":${process.pid},"log":"access","reqId":`;

/** Client-supplied strings (path, host, request id) may hold quotes or control characters: JSON.stringify escapes them. */
const str = JSON.stringify as (value: string) => string;

/**
 * JSON of a field whose value mostly repeats from one line to the next
 * (listener, route, method, host, path, upstream, endpoint): the last value's
 * JSON is kept and reused. Comparing two short strings costs less than
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

const listenerField = new RepeatedField();
const routeField = new RepeatedField();
const methodField = new RepeatedField();
const hostField = new RepeatedField();
const pathField = new RepeatedField();
const upstreamField = new RepeatedField();
const endpointField = new RepeatedField();

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

/** One JSON line, newline included; keys with no value are left out, as pino leaves out undefined. */
export function accessLine(record: AccessRecord): string {
  let line =
    PREFIX +
    isoTime(record.endedAt) +
    PID +
    str(record.reqId) +
    `,"listener":${listenerField.json(record.listener)},"route":${routeField.json(record.route)},"method":${methodField.json(record.method)}` +
    `,"host":${hostField.json(record.host)},"path":${pathField.json(record.path)},"status":${record.status}` +
    `,"durationMs":${hundredthsJson(record.durationMs)},"bytesIn":${record.bytesIn},"bytesOut":${record.bytesOut}` +
    `,"upstream":${upstreamField.json(record.upstream)},"endpoint":${endpointField.json(record.endpoint)},"attempts":${record.attempts}`;
  if (record.error !== undefined) line += `,"error":${str(record.error)}`;
  if (record.retryStop !== undefined) line += `,"retryStop":${str(record.retryStop)}`;
  if (record.aborted) line += `,"aborted":true`;
  return line + '}\n';
}
