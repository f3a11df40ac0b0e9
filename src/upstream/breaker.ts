/**
 * The circuit breaker of one upstream, on opossum. Each try to the upstream
 * is one `fire()`; a try that ends in a connect failure, reset, timeout or a
 * 5xx answer rejects inside opossum (so it counts as a failure) and is handed
 * back to the caller as a value.
 *
 * Config -> opossum:
 * - `errorRate`   -> errorThresholdPercentage. opossum opens when the failed
 *   share is strictly above it; SPEC says "at or above", so we pass a hair
 *   less (errorRate * 100 - 1e-9).
 * - `minRequests` -> volumeThreshold (tries seen in the window before it may open).
 * - `window`      -> rollingCountTimeout, in 10 rollingCountBuckets.
 * - `openFor`     -> resetTimeout; then half-open lets one trial try through,
 *   which closes the breaker on success and opens it again on failure.
 * - opossum's own timeout is off: the route's timeouts govern the try.
 *
 * `maxConcurrent` is counted here rather than with opossum's `capacity`:
 * opossum counts a semaphore rejection as a failure, so an overload would
 * open the breaker, and in half-open it would be taken for the trial.
 * When the breaker closes, the window is emptied (Hystrix and resilience4j
 * do the same): a closed breaker starts from fresh counts instead of
 * re-opening on the first failure because of failures from before it opened.
 */
import CircuitBreaker from 'opossum';
import type { UpstreamConfig } from '../config/schema.ts';
import { ProxyError } from '../core/errors.ts';
import { circuitState } from '../observe/metrics.ts';
import { log } from '../observe/log.ts';

export type BreakerConfig = NonNullable<UpstreamConfig['breaker']>;
export type BreakerState = 'closed' | 'open' | 'half_open';

const STATES: readonly BreakerState[] = ['closed', 'open', 'half_open'];
const BUCKETS = 10;

/**
 * Carries a failed try through opossum's rejection path. Not an Error: it
 * never leaves this module, and an Error would capture a stack trace for
 * every failed try.
 */
class CountedFailure {
  readonly value: unknown;
  constructor(value: unknown) {
    this.value = value;
  }
}

/** One try as the breaker sees it: how to start it, and whether its result counts as a failure. */
export interface BreakerTrial<T> {
  start(): Promise<T>;
  failed(value: T): boolean;
}

/** opossum's action: resolves with a good result, rejects (so opossum counts a failure) with a bad one. */
function fireTrial(trial: BreakerTrial<unknown>): Promise<unknown> {
  return trial.start().then((value) => (trial.failed(value) ? Promise.reject(new CountedFailure(value)) : value));
}

export class UpstreamBreaker {
  readonly upstream: string;
  readonly config: BreakerConfig;
  readonly #circuit: CircuitBreaker<[BreakerTrial<unknown>], unknown>;
  #inFlight = 0;
  /** Ends a try that opossum let through (both made once, not per try). */
  readonly #settled = (value: unknown): unknown => {
    this.#inFlight--;
    return value;
  };
  readonly #refused = (err: unknown): unknown => {
    this.#inFlight--;
    if (err instanceof CountedFailure) return err.value;
    const code = (err as { code?: string }).code;
    if (code === 'EOPENBREAKER') throw new ProxyError('circuit_open', undefined, { cause: err });
    throw err;
  };

  constructor(upstream: string, config: BreakerConfig) {
    this.upstream = upstream;
    this.config = config;
    this.#circuit = new CircuitBreaker(fireTrial, {
      timeout: false,
      errorThresholdPercentage: Math.max(0, config.errorRate * 100 - 1e-9),
      volumeThreshold: config.minRequests,
      rollingCountTimeout: config.window,
      rollingCountBuckets: BUCKETS,
      resetTimeout: config.openFor,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
    });
    this.#circuit.on('open', () => this.#changed('open'));
    this.#circuit.on('halfOpen', () => this.#changed('half_open'));
    this.#circuit.on('close', () => {
      this.#clearWindow();
      this.#changed('closed');
    });
    this.#export('closed');
  }

  get state(): BreakerState {
    if (this.#circuit.opened) return 'open';
    if (this.#circuit.halfOpen) return 'half_open';
    return 'closed';
  }

  /** Tries in flight through this breaker. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Runs one try under the breaker. Rejects at once with ProxyError
   * `circuit_open` (open, or half-open with its trial already out) or
   * `overloaded` (maxConcurrent tries in flight); otherwise resolves with the
   * try's result, failed or not.
   *
   * Plain promise handlers made once per breaker rather than an async
   * function: this runs for every try, and each async layer or closure per
   * request showed up in the CPU cost under load.
   */
  run<T>(trial: BreakerTrial<T>): Promise<T> {
    if (this.#inFlight >= this.config.maxConcurrent) return Promise.reject(new ProxyError('overloaded'));
    if (this.#circuit.isShutdown) return trial.start(); // replaced by a reload while this request was on its way
    this.#inFlight++;
    return this.#circuit.fire(trial as BreakerTrial<unknown>).then(this.#settled, this.#refused) as Promise<T>;
  }

  /**
   * Keeps one place in maxConcurrent until the returned function is called
   * (idempotent). For an exchange that outlives its try, a CONNECT tunnel or a
   * WebSocket (upstream/held.ts): the try takes it when it succeeds, before
   * run() gives the try's own place back, so the place is never free in
   * between. A breaker replaced by a reload meanwhile is only given back a
   * count it no longer uses.
   */
  hold(): () => void {
    this.#inFlight++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#inFlight--;
    };
  }

  /** Stops timers and drops the exported state (upstream removed or breaker reconfigured). */
  shutdown(): void {
    this.#circuit.shutdown();
    for (const state of STATES) circuitState.remove({ upstream: this.upstream, state });
  }

  #changed(state: BreakerState): void {
    this.#export(state);
    const stats = this.#circuit.stats;
    log.warn({ upstream: this.upstream, breaker: state, failures: stats.failures, fires: stats.fires }, `circuit breaker ${state}`);
  }

  #export(current: BreakerState): void {
    for (const state of STATES) circuitState.set({ upstream: this.upstream, state }, state === current ? 1 : 0);
  }

  /** Empties opossum's rolling window by rotating every bucket out. */
  #clearWindow(): void {
    const status = this.#circuit.status as unknown as { rotateBucket?: () => void };
    for (let i = 0; i < BUCKETS; i++) status.rotateBucket?.();
  }
}
