/**
 * What the proxy needs to know of gRPC over HTTP/2 (the gRPC "PROTOCOL-HTTP2"
 * document): which requests are gRPC calls, their deadline (`grpc-timeout`),
 * the status of an answer (`grpc-status`, in a trailers-only head or in the
 * trailers), and which statuses are retried by name or count as the
 * upstream's failure.
 */
import type { IncomingHttpHeaders } from 'node:http';

/** The gRPC codes `retry.on` may name (Envoy's `retry_on` spelling). */
export const GRPC_RETRY_NAMES = {
  cancelled: 1,
  'deadline-exceeded': 4,
  'resource-exhausted': 8,
  internal: 13,
  unavailable: 14,
} as const;

export type GrpcRetryName = keyof typeof GRPC_RETRY_NAMES;

const NAME_OF = new Map<number, GrpcRetryName>(Object.entries(GRPC_RETRY_NAMES).map(([name, code]) => [code, name as GrpcRetryName]));

/** The `retry.on` name of a grpc-status, when it has one. */
export function grpcRetryName(status: number): GrpcRetryName | undefined {
  return NAME_OF.get(status);
}

/**
 * DEADLINE_EXCEEDED, INTERNAL and UNAVAILABLE: what the breaker and outlier
 * ejection count as the upstream's failure, as a 5xx would be, though the
 * HTTP status is 200 (Envoy's gRPC outlier detection counts the same).
 */
const FAILURE_STATUSES: ReadonlySet<number> = new Set([4, 13, 14]);

export function isFailureStatus(status: number | undefined): boolean {
  return status !== undefined && FAILURE_STATUSES.has(status);
}

/**
 * A gRPC call over HTTP/2: `application/grpc` and its `+proto` / `+json`
 * forms. gRPC-Web (`application/grpc-web*`) is not: it is made to cross
 * HTTP/1.1, its trailers travel in the body.
 */
export function isGrpcCall(headers: IncomingHttpHeaders): boolean {
  const type = headers['content-type'];
  return type !== undefined && type.startsWith('application/grpc') && !type.startsWith('application/grpc-web');
}

/** The grpc-status of a head or a trailer section; undefined when absent or not a number. */
export function grpcStatusOf(fields: Record<string, string | string[] | undefined> | undefined): number | undefined {
  const value = fields?.['grpc-status'];
  if (typeof value !== 'string' || !/^\d{1,2}$/.test(value)) return undefined;
  return Number(value);
}

const UNIT_MS = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000_001 } as const;

/** `grpc-timeout` ("1-8 digits, then H M S m u n") in ms; undefined when absent or malformed (then it is ignored, as gRPC servers do). */
export function parseGrpcTimeout(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!match) return undefined;
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

/** A remaining time for `grpc-timeout`: whole milliseconds (at least 1), or seconds when that needs more than 8 digits. */
export function formatGrpcTimeout(ms: number): string {
  const whole = Math.max(1, Math.ceil(ms));
  return whole <= 99_999_999 ? `${whole}m` : `${Math.min(99_999_999, Math.ceil(whole / 1000))}S`;
}
