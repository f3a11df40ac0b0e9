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
    `,"listener":${str(record.listener)},"route":${str(record.route)},"method":${str(record.method)}` +
    `,"host":${str(record.host)},"path":${str(record.path)},"status":${record.status}` +
    `,"durationMs":${record.durationMs},"bytesIn":${record.bytesIn},"bytesOut":${record.bytesOut}` +
    `,"upstream":${str(record.upstream)},"endpoint":${str(record.endpoint)},"attempts":${record.attempts}`;
  if (record.error !== undefined) line += `,"error":${str(record.error)}`;
  if (record.retryStop !== undefined) line += `,"retryStop":${str(record.retryStop)}`;
  if (record.aborted) line += `,"aborted":true`;
  return line + '}\n';
}
