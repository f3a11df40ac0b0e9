/**
 * Whether a failed try is tried again, and after how long: Caddy's `tryAgain`
 * with Envoy's and Linkerd's rules. Pure decisions on values the attempt loop
 * passes in (clock and randomness included), so they are unit-tested without
 * a network.
 *
 * A retry needs, in this order: a failure the route lists in `retry.on`, a
 * replayable method, a body that still fits `bufferBody`, tries left, time
 * left before the route deadline (backoff included), and room in the
 * upstream's retry budget. The first rule that fails is the `retryStop`.
 *
 * Without a retry policy (or when the policy says no) there is one exception,
 * as in Go's and Envoy's connection pools: an idempotent request whose reused
 * keep-alive connection was reset before any response byte is sent once more
 * at once. The upstream closed an idle connection just as we wrote to it; that
 * says nothing about its health, so this retry takes nothing from the budget.
 * The same goes for a stream an HTTP/2 upstream refused unprocessed
 * (REFUSED_STREAM, or above a GOAWAY's last stream), whatever its method.
 */
import type { RetryConfig } from '../config/schema.ts';
import type { RetryStop } from '../observe/exchange.ts';
import type { ErrorCode } from '../core/errors.ts';
import { GRPC_RETRY_NAMES, type GrpcRetryName } from '../h2/grpc.ts';

/** RFC 9110 9.2.2. */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** What went wrong with a try, in `retry.on` terms: one of ours, an HTTP status, or a gRPC status by name. */
export type RetryCondition = 'connect-failure' | 'reset' | 'timeout' | number | GrpcRetryName;

function isGrpcCondition(condition: RetryCondition | undefined): boolean {
  return typeof condition === 'string' && condition in GRPC_RETRY_NAMES;
}

/** The retry condition of one of our error codes (a garbled answer is not retried). */
export function conditionOf(code: ErrorCode): RetryCondition | undefined {
  switch (code) {
    case 'upstream_connect_failed':
      return 'connect-failure';
    case 'upstream_reset':
      return 'reset';
    case 'upstream_timeout':
      return 'timeout';
    default:
      return undefined;
  }
}

/** Exponential backoff with full jitter (AWS architecture blog): uniform in [0, min(max, base * 2^(retry-1))). */
export function backoffDelay(retry: number, base: number, max: number, random: () => number = Math.random): number {
  const ceiling = Math.min(max, base * 2 ** Math.max(0, retry - 1));
  return Math.floor(random() * ceiling);
}

/** Retry-After (delay-seconds or HTTP-date, RFC 9110 10.2.3) in ms from `nowMs` (wall clock), or undefined. */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

/** The wait before retry number `retry`: Retry-After when given (up to backoff.max), else the jittered backoff. */
export function retryDelay(
  retry: number,
  backoff: { readonly base: number; readonly max: number },
  retryAfter: string | string[] | undefined,
  random: () => number = Math.random,
  wallNow: number = Date.now(),
): number {
  const asked = parseRetryAfter(retryAfter, wallNow);
  if (asked !== undefined) return Math.min(asked, backoff.max);
  return backoffDelay(retry, backoff.base, backoff.max, random);
}

/** What the budget offers the plan. */
export interface BudgetLike {
  canRetry(now: number, ratio: number, minPerSecond: number): boolean;
  withdraw(now: number): void;
}

export interface RetryContext {
  readonly policy: RetryConfig | undefined;
  readonly method: string;
  /** Route deadline, on the same clock as `now`. */
  readonly deadline: number;
  readonly budget: BudgetLike;
  readonly random?: () => number;
  /** A gRPC call: a gRPC status named in `retry.on` makes it retryable, POST as it is (as in Envoy). */
  readonly grpc?: boolean;
}

export interface TryFailure {
  readonly condition: RetryCondition | undefined;
  /** The try died on a reused keep-alive connection before any response byte. */
  readonly reusedReset: boolean;
  /** An HTTP/2 upstream refused the stream unprocessed (REFUSED_STREAM, or above a GOAWAY's last stream): safe whatever the method. */
  readonly refused?: boolean;
  readonly retryAfter?: string | string[];
}

export type Verdict =
  | { readonly retry: true; readonly delayMs: number; readonly reason: string }
  | { readonly retry: false; readonly stop: RetryStop | undefined };

/** The retry decisions of one request. */
export class RetryPlan {
  readonly #ctx: RetryContext;
  #tries = 1;
  #implicitUsed = false;

  constructor(ctx: RetryContext) {
    this.#ctx = ctx;
  }

  /** Tries made so far, the one running included. */
  get tries(): number {
    return this.#tries;
  }

  /** True when a retry policy could retry this method at all. */
  static replayableMethod(policy: RetryConfig | undefined, method: string): boolean {
    return policy?.methods ? policy.methods.includes(method) : IDEMPOTENT_METHODS.has(method);
  }

  /** True when `retry.on` names a gRPC code: gRPC calls are then retryable, POST as they are. */
  static namesGrpcCode(policy: RetryConfig): boolean {
    return policy.on.some(isGrpcCondition);
  }

  /** Decides after a failed try; a `retry` verdict has already taken its share of the budget. */
  next(failure: TryFailure, bodyReplayable: boolean, now: number): Verdict {
    const { policy } = this.#ctx;
    const listed = policy !== undefined && failure.condition !== undefined && policy.on.includes(failure.condition);
    let stop: RetryStop | undefined;
    if (listed) {
      const delayMs = retryDelay(this.#tries, policy.backoff, failure.retryAfter, this.#ctx.random);
      stop = this.#stopReason(policy, bodyReplayable, now, delayMs, failure.condition);
      if (stop === undefined) {
        this.#ctx.budget.withdraw(now);
        this.#tries++;
        return { retry: true, delayMs, reason: String(failure.condition) };
      }
    }
    if (this.#implicitAllowed(failure, bodyReplayable, now)) {
      this.#implicitUsed = true;
      this.#tries++;
      return { retry: true, delayMs: 0, reason: 'reset' };
    }
    return { retry: false, stop };
  }

  #stopReason(policy: RetryConfig, bodyReplayable: boolean, now: number, delayMs: number, condition: RetryCondition | undefined): RetryStop | undefined {
    const grpcRule = this.#ctx.grpc === true && isGrpcCondition(condition);
    if (!grpcRule && !RetryPlan.replayableMethod(policy, this.#ctx.method)) return 'not_replayable';
    if (!bodyReplayable) return 'body_too_large';
    if (this.#tries >= policy.attempts) return 'exhausted';
    if (now + delayMs >= this.#ctx.deadline) return 'deadline';
    if (!this.#ctx.budget.canRetry(now, policy.budget.ratio, policy.budget.minPerSecond)) return 'budget';
    return undefined;
  }

  #implicitAllowed(failure: TryFailure, bodyReplayable: boolean, now: number): boolean {
    return (
      ((failure.reusedReset && IDEMPOTENT_METHODS.has(this.#ctx.method)) || failure.refused === true) &&
      !this.#implicitUsed &&
      bodyReplayable &&
      now < this.#ctx.deadline
    );
  }
}
