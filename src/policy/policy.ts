/**
 * Traffic policies share one shape, as Envoy's HTTP filters and Caddy's
 * handler chain do: a policy decides on the request head (let it through,
 * refuse it, add headers to whatever answers it) and may wrap the response
 * (rewrite its head, filter its body). Rate limiting (rate-limit.ts) is the
 * first kind, compression (compress.ts) the second.
 *
 * A route's policies are compiled once per snapshot into a PolicyChain
 * (chain.ts). The listeners run the chain once per request, right after
 * routing; the proxy's response writer (proxy/forward.ts) gives the response
 * head to the admitted `response` filter. A route without policies has no
 * chain at all, so it pays one property read.
 */
import type { ClientRequest, ClientResponse } from '../net/client.ts';
import type { ProxyError } from '../core/errors.ts';
import type { PolicyState } from './state.ts';

/** What a policy decides on: the request head (and the socket it came on), and the state kept across reloads. */
export interface PolicyRequest {
  readonly req: ClientRequest;
  readonly state: PolicyState;
  /** performance.now() of the decision, the same for every policy of the chain. */
  readonly now: number;
}

/** A policy's verdict on one request; undefined fields change nothing. */
export interface PolicyDecision {
  /** Answer with this error instead of serving the request; the rest of the chain does not run. */
  readonly refusal?: ProxyError;
  /** Headers on whatever answers the request (the upstream's answer, the sidecar's own, a refusal). */
  readonly headers?: Record<string, string>;
  /** Sees the response head before it is written. */
  readonly response?: ResponseFilter;
  /**
   * Undoes what the decision took: a CONNECT that turns out to carry HTTP
   * gives back its token, since each request inside is decided on its own.
   */
  readonly release?: () => void;
}

/** One policy of a route, compiled and frozen with the snapshot. */
export interface Policy {
  decide(request: PolicyRequest): PolicyDecision | undefined;
}

/** Response headers as the client will get them (lower-case names), rewritten in place. */
export type ResponseHeaders = Record<string, string | string[]>;

/** Counts the body bytes the client gets (the request's Exchange: the access line's `bytesOut`). */
export interface SentBytes {
  bytesOut: number;
}

/** Made per request by a policy's decision; sees the response head once. */
export interface ResponseFilter {
  /**
   * May rewrite `headers` in place; returns the filter the body must go
   * through, or undefined to let the body pass as it is.
   */
  head(status: number, headers: ResponseHeaders, res: ClientResponse, sent: SentBytes): BodyFilter | undefined;
}

/**
 * A response body rewritten on its way to the client (compressed). It writes
 * to the client's response itself, with backpressure; its writer pauses the
 * upstream while write() says false, until 'drain'.
 */
export interface BodyFilter {
  write(chunk: Buffer): boolean;
  once(event: 'drain', listener: () => void): unknown;
  /** After the last chunk: ends the client's response, with `trailers` when given, then calls `done`. */
  end(trailers: ResponseHeaders | undefined, done: () => void): void;
  /** The exchange was cut: stop and free everything. */
  destroy(): void;
}
