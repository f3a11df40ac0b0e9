/**
 * The circuit breaker of one upstream, on opossum. A try that ends in a
 * connect failure, reset, timeout or a 5xx answer counts as a failure and is
 * handed back to the caller as a value.
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
 * The closed breaker's fast path. A `fire()` per try cost about 5% of a
 * proxied request's CPU (a promise chain, a rest-args copy, a semaphore, two
 * events per call). While the breaker is closed, opossum would only count the
 * try and, when it failed, decide whether to open. So a try under a closed
 * breaker is started directly, and its end is recorded in opossum's rolling
 * window through its own API: a success as one fire and one success
 * (`status.increment`, what opossum's 'fire' and 'success' listeners do), a
 * failure by replaying it through `fire()` with an action that rejects at once,
 * so opossum counts the fire and the failure and makes its own decision to
 * open (circuit.js `fail()`). opossum keeps the state machine, the
 * thresholds, the half-open trial and every decision; an open or half-open
 * breaker is not on the fast path (every try goes through `fire()`). The one
 * difference: a try is counted in the window when it ends, not when it
 * starts, so the error rate is that of finished tries (with tries in flight,
 * opossum's count at the start made the rate look lower than it was).
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

/** One try as the breaker sees it (promise style): how to start it, and whether its result counts as a failure. */
export interface BreakerTrial<T> {
  start(): Promise<T>;
  failed(value: T): boolean;
}

/** Where a try started by the breaker reports its end (exactly once). */
export interface TryReport<T> {
  tryEnded(call: BreakerCall<T>, value: T): void;
}

/**
 * One try as the breaker sees it, callback style: no promise per try. The
 * proxy's attempt loop is one (proxy.ts), so a request through a closed
 * breaker makes no promise and no closure.
 */
export interface BreakerCall<T> {
  /** Starts the try, which calls `report.tryEnded(this, value)` once when it is over. */
  start(report: TryReport<T>): void;
  /** Whether the try's result counts as the upstream's failure. */
  failed(value: T): boolean;
  /** The try is over and counted. */
  ended(value: T): void;
  /** No try was made: ProxyError `circuit_open` or `overloaded`, or what start() threw. */
  refused(error: unknown): void;
}

/**
 * opossum's action, for the tries that go through `fire()`: a try under an
 * open or half-open breaker (resolves with a good result, rejects so that
 * opossum counts a failure with a bad one), or the replay of a failure
 * recorded on the fast path (rejects at once).
 */
function fireTrial(subject: FiredTry | CountedFailure): Promise<unknown> {
  if (subject instanceof CountedFailure) return Promise.reject(subject);
  return new Promise((resolve, reject) => {
    subject.resolve = resolve;
    subject.reject = reject;
    subject.call.start(subject);
  });
}

/** A try that goes through opossum's `fire()`: its report settles opossum's promise. */
class FiredTry implements TryReport<unknown> {
  readonly call: BreakerCall<unknown>;
  resolve: (value: unknown) => void = noop;
  reject: (reason: unknown) => void = noop;
  constructor(call: BreakerCall<unknown>) {
    this.call = call;
  }
  tryEnded(call: BreakerCall<unknown>, value: unknown): void {
    if (call.failed(value)) this.reject(new CountedFailure(value));
    else this.resolve(value);
  }
}

function noop(): void {}

/** The report of a try the breaker does not count (a breaker shut down by a reload while the request was on its way). */
const UNCOUNTED: TryReport<unknown> = { tryEnded: (call, value) => call.ended(value) };

/** A failed promise-style try: what its start() threw or rejected with. */
class Thrown {
  readonly error: unknown;
  constructor(error: unknown) {
    this.error = error;
  }
}

/** `run()`'s adapter: a promise-style trial as a BreakerCall, settling the promise run() returned. */
class PromisedCall<T> implements BreakerCall<T | Thrown> {
  readonly #trial: BreakerTrial<T>;
  readonly #resolve: (value: T) => void;
  readonly #reject: (reason: unknown) => void;
  constructor(trial: BreakerTrial<T>, resolve: (value: T) => void, reject: (reason: unknown) => void) {
    this.#trial = trial;
    this.#resolve = resolve;
    this.#reject = reject;
  }
  start(report: TryReport<T | Thrown>): void {
    let started: Promise<T>;
    try {
      started = this.#trial.start();
    } catch (err) {
      started = Promise.reject(err);
    }
    started.then(
      (value) => report.tryEnded(this, value),
      (err: unknown) => report.tryEnded(this, new Thrown(err)),
    );
  }
  failed(value: T | Thrown): boolean {
    return value instanceof Thrown || this.#trial.failed(value);
  }
  ended(value: T | Thrown): void {
    if (value instanceof Thrown) this.#reject(value.error);
    else this.#resolve(value);
  }
  refused(error: unknown): void {
    this.#reject(error);
  }
}

export class UpstreamBreaker implements TryReport<unknown> {
  readonly upstream: string;
  readonly config: BreakerConfig;
  readonly #circuit: CircuitBreaker<[FiredTry | CountedFailure], unknown>;
  #inFlight = 0;

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
   * try's result, failed or not. For the exchanges that outlive a try
   * (held.ts); the proxy uses attempt(), which makes no promise.
   */
  run<T>(trial: BreakerTrial<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => this.attempt(new PromisedCall(trial, resolve, reject)));
  }

  /**
   * Runs one try under the breaker, callback style: `call.refused()` at once
   * with ProxyError `circuit_open` or `overloaded` (as run()), else
   * `call.start()`, and `call.ended()` once the try is over and counted.
   */
  attempt<T>(call: BreakerCall<T>): void {
    if (this.#inFlight >= this.config.maxConcurrent) return call.refused(new ProxyError('overloaded'));
    const circuit = this.#circuit;
    if (circuit.isShutdown) {
      startCall(call, UNCOUNTED as TryReport<T>); // replaced by a reload while this request was on its way
      return;
    }
    this.#inFlight++;
    if (circuit.closed && circuit.enabled) {
      // The fast path (see the top of this file): tryEnded() records the outcome.
      if (!startCall(call, this as TryReport<T>)) this.#inFlight--;
      return;
    }
    const fired = new FiredTry(call as BreakerCall<unknown>);
    circuit.fire(fired).then(
      (value) => {
        this.#inFlight--;
        call.ended(value as T);
      },
      (err: unknown) => {
        this.#inFlight--;
        if (err instanceof CountedFailure) return call.ended(err.value as T);
        const code = (err as { code?: string }).code;
        call.refused(code === 'EOPENBREAKER' ? new ProxyError('circuit_open', undefined, { cause: err }) : err);
      },
    );
  }

  /** The end of a try started on the fast path: counted in opossum's window, then handed back. */
  tryEnded(call: BreakerCall<unknown>, value: unknown): void {
    this.#inFlight--;
    const circuit = this.#circuit;
    if (call.failed(value)) {
      // opossum counts the fire and the failure, and decides whether to open; the
      // caller hears of the try once it has (its next try sees the breaker opened).
      const ended = () => call.ended(value);
      circuit.fire(new CountedFailure(value)).then(ended, ended);
      return;
    }
    if (circuit.closed) {
      // Status.increment is opossum's (status.js) but missing from @types/opossum.
      const status = circuit.status as unknown as RollingWindow;
      status.increment('fires');
      status.increment('successes');
    } else {
      // Opened or half-open meanwhile: opossum's listeners count it (and a success closes a half-open breaker).
      circuit.emit('fire', [value]);
      circuit.emit('success', value, 0);
    }
    call.ended(value);
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

/** What the fast path uses of opossum's Status (lib/status.js). */
interface RollingWindow {
  increment(property: 'fires' | 'successes'): void;
}

/** Starts `call`; what its start() throws refuses it instead (false then: no try was made). */
function startCall<T>(call: BreakerCall<T>, report: TryReport<T>): boolean {
  try {
    call.start(report);
    return true;
  } catch (err) {
    call.refused(err);
    return false;
  }
}
