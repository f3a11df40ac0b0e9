/**
 * What happened to one request, filled in along its path and written once at
 * its end as one access-log line and the request metrics (SPEC.md "Access
 * log"). Plain fields, no closures: this object is made for every request.
 */
import type { ErrorCode } from '../proxy/errors.ts';
import type { ListenerName } from '../config/compile.ts';
import { accessLog } from './log.ts';
import { activeRequests, requestDuration, requestsTotal } from './metrics.ts';

export type RetryStop = 'exhausted' | 'budget' | 'not_replayable' | 'body_too_large' | 'deadline';

export class Exchange {
  readonly start = performance.now();
  readonly listener: ListenerName;
  readonly reqId: string;
  readonly method: string;
  readonly host: string;
  /** The client's path without query, before any rewrite. */
  readonly path: string;
  route = '';
  upstream = '';
  endpoint = '';
  status = 0;
  bytesIn = 0;
  bytesOut = 0;
  attempts = 0;
  error: ErrorCode | undefined = undefined;
  retryStop: RetryStop | undefined = undefined;
  /** The response was cut after it had started (upstream died mid-body, client left). */
  aborted = false;
  #done = false;

  constructor(listener: ListenerName, reqId: string, method: string, host: string, path: string) {
    this.listener = listener;
    this.reqId = reqId;
    this.method = method;
    this.host = host;
    this.path = path;
    activeRequests.inc({ listener });
  }

  /** Writes the access line and metrics; later calls do nothing. */
  finish(accessLogOn: boolean): void {
    if (this.#done) return;
    this.#done = true;
    const seconds = (performance.now() - this.start) / 1000;
    activeRequests.dec({ listener: this.listener });
    const code = String(this.status);
    requestsTotal.inc({ listener: this.listener, route: this.route, upstream: this.upstream, method: this.method, code });
    requestDuration.observe({ listener: this.listener, route: this.route, upstream: this.upstream }, seconds);
    if (!accessLogOn) return;
    accessLog.info({
      reqId: this.reqId,
      listener: this.listener,
      route: this.route,
      method: this.method,
      host: this.host,
      path: this.path,
      status: this.status,
      durationMs: Math.round(seconds * 100_000) / 100,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      upstream: this.upstream,
      endpoint: this.endpoint,
      attempts: this.attempts,
      error: this.error,
      retryStop: this.retryStop,
      aborted: this.aborted || undefined,
    });
  }
}
