import { describe, expect, it } from 'vitest';
import { ejectionDuration, mayEject, MAX_EJECTION_MS, nextMultiplier, OutlierState, recordResult } from '../src/upstream/outlier.ts';
import { HealthCount, nextHealth } from '../src/upstream/health.ts';

const peers = (n: number) => Array.from({ length: n }, () => ({ outlier: new OutlierState(), healthy: true }));
const config = { consecutiveErrors: 3, ejectFor: 1000, maxEjectedPercent: 50 };

describe('outlier ejection', () => {
  it('ejects after consecutiveErrors failures in a row; a success resets the count', () => {
    const list = peers(2);
    expect(recordResult(list[0], list, true, config, 0)).toBeUndefined();
    expect(recordResult(list[0], list, true, config, 0)).toBeUndefined();
    expect(recordResult(list[0], list, false, config, 0)).toBeUndefined();
    expect(recordResult(list[0], list, true, config, 0)).toBeUndefined();
    expect(recordResult(list[0], list, true, config, 0)).toBeUndefined();
    expect(recordResult(list[0], list, true, config, 0)).toBe(1000);
    expect(list[0].outlier.isEjected(999)).toBe(true);
    expect(list[0].outlier.isEjected(1000)).toBe(false);
  });

  it('ejectFor grows with repeated ejections and decays while the endpoint stays in service', () => {
    expect(nextMultiplier(0, 0, 0, 1000)).toBe(1);
    expect(nextMultiplier(1, 1000, 1000, 1000)).toBe(2); // ejected again right away
    expect(nextMultiplier(3, 1000, 2500, 1000)).toBe(3); // one ejectFor in service: 3 - 1 + 1
    expect(nextMultiplier(3, 1000, 60_000, 1000)).toBe(1); // long in service: back to the start
    expect(ejectionDuration(1000, 3)).toBe(3000);
    expect(ejectionDuration(30_000, 50)).toBe(MAX_EJECTION_MS);
    expect(ejectionDuration(600_000, 2)).toBe(600_000);

    const list = peers(2);
    const durations: number[] = [];
    let now = 0;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 3; i++) {
        const d = recordResult(list[0], list, true, config, now);
        if (d !== undefined) durations.push(d);
      }
      now = list[0].outlier.ejectedUntil; // fails again as soon as it is back
    }
    expect(durations).toEqual([1000, 2000, 3000]);
  });

  it('never more than floor(n * maxEjectedPercent / 100) at once', () => {
    const list = peers(4);
    const eject = (i: number) => {
      for (let k = 0; k < 3; k++) recordResult(list[i], list, true, config, 0);
      return list[i].outlier.isEjected(0);
    };
    expect([eject(0), eject(1), eject(2), eject(3)]).toEqual([true, true, false, false]);
    expect(mayEject(list[2], list, 50, 0)).toBe(false);
    expect(mayEject(list[2], list, 75, 0)).toBe(true);
  });

  it('at least one endpoint stays eligible, even at 100% and counting failed health checks', () => {
    const one = peers(1);
    expect(mayEject(one[0], one, 100, 0)).toBe(false);
    const two = peers(2);
    two[1].healthy = false;
    expect(mayEject(two[0], two, 100, 0)).toBe(false);
    two[1].healthy = true;
    expect(mayEject(two[0], two, 100, 0)).toBe(true);
  });
});

describe('active health thresholds', () => {
  const thresholds = { unhealthyAfter: 3, healthyAfter: 2 };

  it('unhealthy after unhealthyAfter failures in a row, healthy again after healthyAfter passes in a row', () => {
    const count = new HealthCount();
    let healthy = true;
    const run = (results: boolean[]) => results.map((passed) => (healthy = nextHealth(healthy, count, passed, thresholds)));
    expect(run([false, false, true, false, false])).toEqual([true, true, true, true, true]);
    expect(run([false])).toEqual([false]);
    expect(run([true, false, true, true])).toEqual([false, false, false, true]);
    expect(run([true, false])).toEqual([true, true]);
  });
});
