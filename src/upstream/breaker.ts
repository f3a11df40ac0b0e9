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
import { ProxyError } from '../proxy/errors.ts';
import { circuitState } from '../observe/metrics.ts';
import { log } from '../observe/log.ts';

export type BreakerConfig = NonNullable<UpstreamConfig['breaker']>;
export type BreakerState = 'closed' | 'open' | 'half_open';

const STATES: readonly BreakerState[] = ['closed', 'open', 'half_open'];
const BUCKETS = 10;

/** Carries a failed try through opossum's rejection path. */
class CountedFailure<T> extends Error {
  readonly value: T;
  constructor(value: T) {
    super('upstream failure');
    this.value = value;
  }
}

type Run = () => Promise<unknown>;

export class UpstreamBreaker {
  readonly upstream: string;
  readonly config: BreakerConfig;
  readonly #circuit: CircuitBreaker<[Run, (value: unknown) => boolean], unknown>;
  #inFlight = 0;

  constructor(upstream: string, config: BreakerConfig) {
    this.upstream = upstream;
    this.config = config;
    this.#circuit = new CircuitBreaker(
      async (run: Run, failed: (value: unknown) => boolean) => {
        const value = await run();
        if (failed(value)) throw new CountedFailure(value);
        return value;
      },
      {
        timeout: false,
        errorThresholdPercentage: Math.max(0, config.errorRate * 100 - 1e-9),
        volumeThreshold: config.minRequests,
        rollingCountTimeout: config.window,
        rollingCountBuckets: BUCKETS,
        resetTimeout: config.openFor,
        rollingPercentilesEnabled: false,
        enableSnapshots: false,
      },
    );
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
   */
  async run<T>(attempt: () => Promise<T>, failed: (value: T) => boolean): Promise<T> {
    if (this.#inFlight >= this.config.maxConcurrent) throw new ProxyError('overloaded');
    this.#inFlight++;
    try {
      return (await this.#circuit.fire(attempt, failed as (value: unknown) => boolean)) as T;
    } catch (err) {
      if (err instanceof CountedFailure) return err.value as T;
      const code = (err as { code?: string }).code;
      if (code === 'EOPENBREAKER') throw new ProxyError('circuit_open', undefined, { cause: err });
      if (code === 'ESHUTDOWN') return attempt(); // replaced by a reload while this request was on its way
      throw err;
    } finally {
      this.#inFlight--;
    }
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
