/**
 * The status page's arithmetic: latency quantiles from histogram buckets
 * (histogram_quantile's interpolation), rates between two readings, and a
 * counter that went down (a worker died with its counts) read as no traffic.
 */
import { describe, expect, it } from 'vitest';
import { quantileMs, ratesBetween, type Counts } from '../src/status/sample.ts';

const bounds = [0.001, 0.01, 0.1, 1];

describe('quantileMs', () => {
  it('interpolates inside the bucket the rank falls in', () => {
    // 10 requests at or below 1 ms, 10 between 1 and 10 ms.
    expect(quantileMs([10, 10, 0, 0, 0], bounds, 0.5)).toBeCloseTo(1);
    expect(quantileMs([10, 10, 0, 0, 0], bounds, 0.75)).toBeCloseTo(5.5);
    expect(quantileMs([0, 0, 4, 0, 0], bounds, 0.99)).toBeCloseTo(10 + 90 * 0.99);
  });

  it('is the highest finite bound for the +Inf bucket, and undefined without requests', () => {
    expect(quantileMs([0, 0, 0, 0, 3], bounds, 0.5)).toBe(1000);
    expect(quantileMs([0, 0, 0, 0, 0], bounds, 0.5)).toBeUndefined();
  });
});

describe('ratesBetween', () => {
  const counts = (requests: number, s2xx: number, s5xx: number, buckets: number[]): Counts => ({ requests, s2xx, s4xx: requests - s2xx - s5xx, s5xx, buckets });

  it('gives per-second rates and the quantiles of the interval only', () => {
    const older = counts(100, 100, 0, [100, 100, 100, 100, 100]); // all fast before
    const newer = counts(120, 110, 10, [100, 100, 120, 120, 120]); // 20 slow ones since
    const rates = ratesBetween(older, newer, 2, bounds);
    expect(rates).toMatchObject({ requests: 10, s2xx: 5, s5xx: 5, s4xx: 0 });
    expect(rates.p50Ms).toBeCloseTo(10 + 90 * 0.5);
  });

  it('reads a counter that went down as no traffic, never as a negative rate', () => {
    const rates = ratesBetween(counts(50, 50, 0, [50, 50, 50, 50, 50]), counts(20, 20, 0, [20, 20, 20, 20, 20]), 2, bounds);
    expect(rates).toMatchObject({ requests: 0, s2xx: 0, p50Ms: undefined });
  });
});
