import { describe, expect, it } from 'vitest';
import { RetryBudget } from '../src/upstream/budget.ts';

describe('retry budget arithmetic (Linkerd: ratio of live requests plus a floor, over 10 s)', () => {
  it('the floor alone: minPerSecond * 10 retries in an empty window', () => {
    const budget = new RetryBudget();
    let allowed = 0;
    while (budget.canRetry(0, 0.2, 3) && allowed < 1000) {
      budget.withdraw(0);
      allowed++;
    }
    expect(allowed).toBe(30);
  });

  it('each request adds `ratio` of a retry', () => {
    const budget = new RetryBudget();
    for (let i = 0; i < 100; i++) budget.deposit(0);
    let allowed = 0;
    while (budget.canRetry(0, 0.2, 0) && allowed < 1000) {
      budget.withdraw(0);
      allowed++;
    }
    expect(allowed).toBe(20);
    expect(budget.counts(0)).toEqual({ requests: 100, retries: 20 });
  });

  it('requests and retries leave the window after 10 s, one-second bucket by bucket', () => {
    const budget = new RetryBudget();
    for (let i = 0; i < 10; i++) {
      budget.deposit(i * 1000); // one request per second, t = 0..9 s
      if (i === 0) budget.withdraw(500);
    }
    expect(budget.counts(9_999)).toEqual({ requests: 10, retries: 1 });
    expect(budget.counts(10_000)).toEqual({ requests: 9, retries: 0 });
    expect(budget.counts(15_500)).toEqual({ requests: 4, retries: 0 });
    expect(budget.counts(60_000)).toEqual({ requests: 0, retries: 0 });
  });

  it('ratio 0 and no floor: no retries at all', () => {
    const budget = new RetryBudget();
    for (let i = 0; i < 50; i++) budget.deposit(0);
    expect(budget.canRetry(0, 0, 0)).toBe(false);
  });

  it('a sustained hard failure: retries per request converge to ratio + floor / rate', () => {
    const budget = new RetryBudget();
    let requests = 0;
    let retries = 0;
    // 100 requests/s for 60 s, each wanting 4 retries.
    for (let t = 0; t < 60_000; t += 10) {
      budget.deposit(t);
      requests++;
      for (let r = 0; r < 4 && budget.canRetry(t, 0.2, 10); r++) {
        budget.withdraw(t);
        retries++;
      }
    }
    // Over 60 s: at most 0.2 * requests + 10/s * 60 s (the window slides, so at most one extra window of floor).
    expect(retries / requests).toBeLessThanOrEqual(0.2 + (10 * 70) / requests);
    expect(retries / requests).toBeGreaterThan(0.2);
  });
});
