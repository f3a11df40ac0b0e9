/**
 * Retry budget, Linkerd's semantics (tower's `Budget`): over a sliding window
 * (10 s, in one-second buckets), retries may add at most `ratio` of the
 * requests seen, plus a floor of `minPerSecond` per second of window:
 *
 *   retries + 1 <= ratio * requests + minPerSecond * windowSeconds
 *
 * So a hard-failing upstream sees at most (1 + ratio) times its live request
 * rate, plus the floor, however many `attempts` the routes allow. One budget
 * per upstream: every request to it deposits, every retry withdraws; each
 * route checks with its own ratio and floor. Pure arithmetic on a clock the
 * caller passes in, so the tests need no timers.
 */

export const BUDGET_WINDOW_MS = 10_000;
const BUCKETS = 10;

export class RetryBudget {
  readonly #bucketMs: number;
  readonly #windowSeconds: number;
  readonly #requests = new Array<number>(BUCKETS).fill(0);
  readonly #retries = new Array<number>(BUCKETS).fill(0);
  #requestTotal = 0;
  #retryTotal = 0;
  /** Index of the time slot (now / bucketMs) the head bucket belongs to. */
  #slot = -1;

  constructor(windowMs = BUDGET_WINDOW_MS) {
    this.#bucketMs = windowMs / BUCKETS;
    this.#windowSeconds = windowMs / 1000;
  }

  /** Counts one request (first tries only). */
  deposit(now: number): void {
    const i = this.#advance(now);
    this.#requests[i]++;
    this.#requestTotal++;
  }

  /** True when one more retry fits the budget of a route with this ratio and floor. */
  canRetry(now: number, ratio: number, minPerSecond: number): boolean {
    this.#advance(now);
    return this.#retryTotal + 1 <= ratio * this.#requestTotal + minPerSecond * this.#windowSeconds;
  }

  /** Counts one retry. */
  withdraw(now: number): void {
    const i = this.#advance(now);
    this.#retries[i]++;
    this.#retryTotal++;
  }

  /** Requests and retries inside the window ending at `now`. */
  counts(now: number): { requests: number; retries: number } {
    this.#advance(now);
    return { requests: this.#requestTotal, retries: this.#retryTotal };
  }

  /** Moves the window to `now`, emptying the buckets that fell out; returns the head index. */
  #advance(now: number): number {
    const slot = Math.floor(now / this.#bucketMs);
    if (this.#slot === -1) this.#slot = slot;
    if (slot > this.#slot) {
      const steps = Math.min(slot - this.#slot, BUCKETS);
      for (let step = 1; step <= steps; step++) {
        const i = (this.#slot + step) % BUCKETS;
        this.#requestTotal -= this.#requests[i];
        this.#retryTotal -= this.#retries[i];
        this.#requests[i] = 0;
        this.#retries[i] = 0;
      }
      this.#slot = slot;
    }
    return this.#slot % BUCKETS;
  }
}
