/**
 * Passive health (Envoy's outlier detection, consecutive-5xx flavour): an
 * endpoint that fails `consecutiveErrors` tries in a row is ejected for
 * `ejectFor` times its ejection multiplier. The multiplier grows by one with
 * each ejection and decays by one for every `ejectFor` the endpoint then
 * stays in service, so a flapping endpoint stays out longer and longer while
 * one that recovered starts again from `ejectFor`. An ejection never lasts
 * more than MAX_EJECTION_MS (Envoy's max_ejection_time) unless `ejectFor`
 * itself is longer.
 *
 * Never more than floor(n * maxEjectedPercent / 100) endpoints are ejected at
 * once, and an ejection that would leave no eligible endpoint is skipped.
 * Ejections end lazily: `isEjected(now)` is read when picking, no timers.
 */

/** Envoy's default max_ejection_time. */
export const MAX_EJECTION_MS = 300_000;

export interface OutlierConfig {
  readonly consecutiveErrors: number;
  readonly ejectFor: number;
  readonly maxEjectedPercent: number;
}

export class OutlierState {
  consecutiveErrors = 0;
  /** Until when the endpoint is out of service (0 = never ejected). */
  ejectedUntil = 0;
  multiplier = 0;

  isEjected(now: number): boolean {
    return now < this.ejectedUntil;
  }
}

/** An endpoint as ejection sees it. */
export interface OutlierPeer {
  readonly outlier: OutlierState;
  /** Verdict of the active health check (true without one). */
  readonly healthy: boolean;
}

/** The multiplier for a new ejection, after decay for the time spent in service since the last one ended. */
export function nextMultiplier(previous: number, lastEjectedUntil: number, now: number, ejectFor: number): number {
  if (previous === 0 || ejectFor <= 0) return previous + 1;
  const inService = Math.max(0, now - lastEjectedUntil);
  return Math.max(0, previous - Math.floor(inService / ejectFor)) + 1;
}

/** How long an ejection with this multiplier lasts. */
export function ejectionDuration(ejectFor: number, multiplier: number): number {
  return Math.min(ejectFor * multiplier, Math.max(ejectFor, MAX_EJECTION_MS));
}

/** True when `target`, one of `peers`, may be ejected now. */
export function mayEject(target: OutlierPeer, peers: readonly OutlierPeer[], maxEjectedPercent: number, now: number): boolean {
  let ejected = 0;
  let eligible = 0;
  for (const peer of peers) {
    if (peer.outlier.isEjected(now)) ejected++;
    else if (peer.healthy) eligible++;
  }
  const cap = Math.floor((peers.length * maxEjectedPercent) / 100);
  const eligibleAfter = eligible - (target.healthy ? 1 : 0);
  return ejected + 1 <= cap && eligibleAfter >= 1;
}

/**
 * Records the result of one try on `target` (one of `peers`); returns the
 * ejection's duration when this result ejected it.
 */
export function recordResult(
  target: OutlierPeer,
  peers: readonly OutlierPeer[],
  failed: boolean,
  config: OutlierConfig,
  now: number,
): number | undefined {
  const state = target.outlier;
  if (!failed) {
    state.consecutiveErrors = 0;
    return undefined;
  }
  state.consecutiveErrors++;
  if (state.consecutiveErrors < config.consecutiveErrors || state.isEjected(now)) return undefined;
  if (!mayEject(target, peers, config.maxEjectedPercent, now)) return undefined;
  state.multiplier = nextMultiplier(state.multiplier, state.ejectedUntil, now, config.ejectFor);
  const duration = ejectionDuration(config.ejectFor, state.multiplier);
  state.ejectedUntil = now + duration;
  state.consecutiveErrors = 0;
  return duration;
}
