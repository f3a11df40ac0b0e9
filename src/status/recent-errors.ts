/**
 * The last answers the sidecar gave itself (an error code in the access
 * line), kept for the status page so a 502 can be traced to its cause without
 * the log: a ring of RECENT_ERRORS_KEPT entries, fed where a request's record
 * is finished (observe/exchange.ts). Only requests that failed pay for it.
 */

/** How many are kept (per process; a cluster primary merges its workers' and keeps as many). */
export const RECENT_ERRORS_KEPT = 50;

/** What recordError reads: the finished request (an Exchange). */
export interface FailedRequest {
  readonly status: number;
  /** The CODE of `x-sidecar-error`; undefined when the sidecar did not answer itself. */
  readonly error: string | undefined;
  readonly listener: string;
  readonly route: string;
  readonly upstream: string;
  /** The endpoint of the last try (as the access log shows it), empty when none was tried. */
  readonly endpoint: string;
  readonly method: string;
  /** The client's path without the query string, as in the access line. */
  readonly path: string;
  readonly reqId: string;
  readonly attempts: number;
}

/** One answer of the sidecar's own, as the status page lists it: the request's fields, `code` for `error`, and when. */
export interface RecentError extends Omit<FailedRequest, 'error'> {
  /** ISO time the request ended. */
  readonly time: string;
  readonly code: string;
}

const ring: Array<RecentError | undefined> = new Array<RecentError | undefined>(RECENT_ERRORS_KEPT).fill(undefined);
let next = 0;

/** Keeps `request` when the sidecar answered it with its own error; the oldest entry goes. */
export function recordError(request: FailedRequest, endedAt: number = Date.now()): void {
  if (request.error === undefined) return;
  ring[next] = {
    time: new Date(endedAt).toISOString(),
    status: request.status,
    code: request.error,
    listener: request.listener,
    route: request.route,
    upstream: request.upstream,
    endpoint: request.endpoint,
    method: request.method,
    path: request.path,
    reqId: request.reqId,
    attempts: request.attempts,
  };
  next = (next + 1) % RECENT_ERRORS_KEPT;
}

/** This process's entries, newest first. */
export function recentErrors(): RecentError[] {
  const out: RecentError[] = [];
  for (let i = 1; i <= RECENT_ERRORS_KEPT; i++) {
    const entry = ring[(next - i + RECENT_ERRORS_KEPT) % RECENT_ERRORS_KEPT];
    if (entry) out.push(entry);
  }
  return out;
}

/** Several processes' entries as one list: newest first, RECENT_ERRORS_KEPT at most. */
export function mergeRecentErrors(lists: ReadonlyArray<readonly RecentError[] | undefined>): RecentError[] {
  return lists
    .flatMap((list) => (Array.isArray(list) ? list : []))
    .sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0))
    .slice(0, RECENT_ERRORS_KEPT);
}
