/**
 * Endpoint selection policies (`balance`), as pure functions over the
 * endpoints that are eligible right now (healthy, not ejected, not yet tried
 * by this request when there is a choice).
 *
 * - `round-robin`: a cursor that survives reloads with the upstream.
 * - `least-request`: power of two choices (Mitzenmacher; Envoy's
 *   LEAST_REQUEST default): two distinct random candidates, the one with fewer
 *   requests in flight wins. O(1), and it avoids the herd that "always the
 *   least loaded" causes when many pickers see the same counts.
 * - `random`: uniform.
 */

export type BalancePolicy = 'round-robin' | 'least-request' | 'random';

export interface Candidate {
  readonly inFlight: number;
}

/** Mutable round-robin position, owned by the upstream. */
export interface Cursor {
  value: number;
}

/** Index into `candidates` (which must not be empty) chosen by `policy`. */
export function chooseIndex(
  policy: BalancePolicy,
  candidates: readonly Candidate[],
  cursor: Cursor,
  random: () => number = Math.random,
): number {
  const n = candidates.length;
  if (n === 1) return 0;
  switch (policy) {
    case 'round-robin': {
      const index = cursor.value % n;
      cursor.value = (cursor.value + 1) % 0x7fffffff;
      return index;
    }
    case 'random':
      return Math.floor(random() * n);
    case 'least-request': {
      const a = Math.floor(random() * n);
      let b = Math.floor(random() * (n - 1));
      if (b >= a) b++;
      return candidates[b].inFlight < candidates[a].inFlight ? b : a;
    }
  }
}

/**
 * The candidates for one try: the eligible endpoints this request has not
 * tried yet, or all eligible ones once every one was tried (a retry goes to a
 * different endpoint when there is one).
 */
export function untried<T>(eligible: readonly T[], tried: ReadonlySet<T> | undefined): readonly T[] {
  if (!tried || tried.size === 0) return eligible;
  const fresh = eligible.filter((endpoint) => !tried.has(endpoint));
  return fresh.length > 0 ? fresh : eligible;
}
