/**
 * Exchanges that outlive their try: a CONNECT tunnel to a logical name and a
 * WebSocket. Their try (the TCP connect, or the upgrade request up to the
 * upstream's answer) is accounted like a proxied request's try in
 * proxy/proxy.ts, with the same objects: an endpoint picked by the balance
 * policy among the healthy, non-ejected ones; the upstream's breaker
 * (`circuit_open`, `overloaded` at maxConcurrent), which counts the try as a
 * success or a failure; outlier ejection, told the result; the endpoint's
 * `inFlight`. What differs is how long they last: an exchange that opened
 * keeps its place in maxConcurrent and in `inFlight` until it closes, and it
 * is a connection of its own beside the endpoint's pool, so it counts against
 * the upstream's `connections` (pool connections included) and is refused
 * with `overloaded` on an endpoint that has them all open.
 *
 * No retry on another endpoint: as for a request on a route without `retry`,
 * one try, whose failure the client sees.
 */
import { ProxyError } from '../core/errors.ts';
import type { EndpointState, UpstreamState } from './state.ts';

/** What a try's result says about its endpoint. */
export type TryVerdict =
  /** Counted as a success (the breaker, ejection's consecutive errors). */
  | 'fine'
  /** Counted as the endpoint's failure: connect failure, reset, timeout, 5xx. */
  | 'failed'
  /** Says nothing (the client left first); the breaker counts it as opossum counts any try that did not fail. */
  | 'nothing';

/** One try of a long-lived exchange. */
export interface HeldTry<T> {
  /** Opens the exchange on `endpoint`; resolves (never rejects) once the try can be judged. */
  start(endpoint: EndpointState): Promise<T>;
  verdict(value: T): TryVerdict;
  /** True when the exchange stays open after this result (a tunnel that connected, a 101). */
  opened(value: T): boolean;
}

/**
 * Why a new exchange with `upstream` would be refused now, without taking
 * anything: for a refusal that must be answered before the exchange starts
 * (the `200 Connection Established` of a CONNECT). The try itself checks
 * again (`UpstreamHold.open`): the state may change in between.
 */
export function refusalOf(upstream: UpstreamState, now: number = performance.now()): ProxyError | undefined {
  const breaker = upstream.breaker;
  if (breaker?.state === 'open') return new ProxyError('circuit_open');
  if (breaker && breaker.inFlight >= breaker.config.maxConcurrent) return new ProxyError('overloaded');
  if (!upstream.endpoints.some((endpoint) => endpoint.healthy && !endpoint.outlier.isEjected(now))) return new ProxyError('no_healthy_endpoint');
  return undefined;
}

/** Connections open to `endpoint`: the pool's and the held ones (tunnels, WebSockets, connecting or open). */
function openConnections(endpoint: EndpointState): number {
  return endpoint.held + endpoint.pool.stats.connected;
}

/** The endpoint for a new held exchange: the balance policy's pick among those with a connection to spare. */
function endpointWithRoom(upstream: UpstreamState): EndpointState {
  const full = new Set<EndpointState>();
  // Ends: each round adds an endpoint to `full` or returns; pick() offers an
  // endpoint already in `full` only once every eligible one is in it.
  for (;;) {
    const endpoint = upstream.pick(full);
    if (!endpoint) throw new ProxyError('no_healthy_endpoint');
    if (full.has(endpoint)) {
      throw new ProxyError('overloaded', `every endpoint of upstream "${upstream.name}" has its ${upstream.config.connections} connections open`);
    }
    if (openConnections(endpoint) < upstream.config.connections) return endpoint;
    full.add(endpoint);
  }
}

/**
 * One long-lived exchange's hold on its upstream: `open` makes the try,
 * `end` gives everything back once the exchange is over. `end` may come at
 * any time, before the try was judged too (a client that left at once).
 */
export class UpstreamHold {
  #release: (() => void) | undefined;
  #ended = false;

  /**
   * Picks an endpoint and makes the try under the breaker. Rejects with a
   * ProxyError (`no_healthy_endpoint`, `overloaded`, `circuit_open`) when no
   * try was made; otherwise resolves with the try's result, whatever it is.
   */
  async open<T>(upstream: UpstreamState, attempt: HeldTry<T>): Promise<{ readonly endpoint: EndpointState; readonly value: T }> {
    const endpoint = endpointWithRoom(upstream);
    const breaker = upstream.breaker;
    let releaseBreaker: (() => void) | undefined;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      endpoint.inFlight--;
      endpoint.held--;
      releaseBreaker?.();
    };
    const trial = {
      start: (): Promise<T> => {
        endpoint.inFlight++;
        endpoint.held++;
        let started: Promise<T>;
        try {
          started = attempt.start(endpoint);
        } catch (err) {
          release();
          return Promise.reject(err);
        }
        return started.then(
          (value) => {
            // Taken before run() gives the try's own place back (breaker.ts hold()).
            if (breaker && attempt.opened(value) && attempt.verdict(value) !== 'failed') releaseBreaker = breaker.hold();
            return value;
          },
          (err: unknown) => {
            release();
            throw err;
          },
        );
      },
      failed: (value: T) => attempt.verdict(value) === 'failed',
    };
    const value = breaker ? await breaker.run(trial) : await trial.start();
    const verdict = attempt.verdict(value);
    if (verdict !== 'nothing') upstream.report(endpoint, verdict === 'failed');
    if (attempt.opened(value)) this.#keep(release);
    else release();
    return { endpoint, value };
  }

  /** The exchange is over (closed, or never opened); idempotent. */
  end(): void {
    this.#ended = true;
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }

  #keep(release: () => void): void {
    if (this.#ended) release();
    else this.#release = release;
  }
}
