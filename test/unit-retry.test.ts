import { describe, expect, it } from 'vitest';
import { retrySchema } from '../src/config/schema.ts';
import { RetryBudget } from '../src/upstream/budget.ts';
import { backoffDelay, conditionOf, parseRetryAfter, retryDelay, RetryPlan, type BudgetLike } from '../src/proxy/retry.ts';

const policy = (extra: Record<string, unknown> = {}) => retrySchema.parse({ attempts: 3, ...extra });

/** A budget that always allows and counts withdrawals. */
function openBudget(): BudgetLike & { withdrawn: number } {
  return {
    withdrawn: 0,
    canRetry: () => true,
    withdraw() {
      this.withdrawn++;
    },
  };
}

describe('backoff schedule (exponential, full jitter)', () => {
  it('the ceiling doubles per retry from base and stops at max', () => {
    const top = () => 0.999999;
    expect([1, 2, 3, 4, 5, 6].map((retry) => backoffDelay(retry, 25, 250, top))).toEqual([24, 49, 99, 199, 249, 249]);
  });

  it('full jitter: anywhere from 0 up to the ceiling', () => {
    expect(backoffDelay(3, 25, 250, () => 0)).toBe(0);
    expect(backoffDelay(3, 25, 250, () => 0.5)).toBe(50);
    for (let i = 0; i < 200; i++) {
      const delay = backoffDelay(4, 25, 250);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(200);
    }
  });

  it('Retry-After in seconds or as an HTTP date, honoured up to backoff.max', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('2', now)).toBe(2000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:01 GMT', now)).toBe(1000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    const backoff = { base: 25, max: 250 };
    expect(retryDelay(1, backoff, '0', () => 0.9, now)).toBe(0);
    expect(retryDelay(1, backoff, '120', () => 0.9, now)).toBe(250);
    expect(retryDelay(1, { base: 25, max: 5000 }, '1', () => 0.9, now)).toBe(1000);
    expect(retryDelay(2, backoff, undefined, () => 0.5, now)).toBe(25);
  });

  it('maps error codes to retry conditions; a garbled answer is not retried', () => {
    expect(conditionOf('upstream_connect_failed')).toBe('connect-failure');
    expect(conditionOf('upstream_reset')).toBe('reset');
    expect(conditionOf('upstream_timeout')).toBe('timeout');
    expect(conditionOf('upstream_bad_response')).toBeUndefined();
    expect(conditionOf('payload_too_large')).toBeUndefined();
  });
});

describe('RetryPlan', () => {
  const failure = (condition: 'reset' | 'connect-failure' | 'timeout' | number, reusedReset = false) => ({ condition, reusedReset });

  it('retries listed conditions until attempts are exhausted', () => {
    const budget = openBudget();
    const plan = new RetryPlan({ policy: policy(), method: 'GET', deadline: 10_000, budget, random: () => 0 });
    expect(plan.next(failure(503), true, 0)).toEqual({ retry: true, delayMs: 0, reason: '503' });
    expect(plan.next(failure('reset'), true, 0)).toEqual({ retry: true, delayMs: 0, reason: 'reset' });
    expect(plan.next(failure('reset'), true, 0)).toEqual({ retry: false, stop: 'exhausted' });
    expect(plan.tries).toBe(3);
    expect(budget.withdrawn).toBe(2);
  });

  it('does not retry what the route does not list, and says nothing about it', () => {
    const plan = new RetryPlan({ policy: policy(), method: 'GET', deadline: 10_000, budget: openBudget() });
    expect(plan.next(failure(500), true, 0)).toEqual({ retry: false, stop: undefined });
    expect(plan.next(failure('timeout'), true, 0)).toEqual({ retry: false, stop: undefined });
  });

  it('stops with not_replayable, body_too_large, deadline and budget, in that order', () => {
    const post = new RetryPlan({ policy: policy(), method: 'POST', deadline: 10_000, budget: openBudget() });
    expect(post.next(failure('reset'), false, 0)).toEqual({ retry: false, stop: 'not_replayable' });
    const listed = new RetryPlan({ policy: policy({ methods: ['POST'] }), method: 'POST', deadline: 10_000, budget: openBudget() });
    expect(listed.next(failure('reset'), false, 0)).toEqual({ retry: false, stop: 'body_too_large' });
    const late = new RetryPlan({ policy: policy(), method: 'GET', deadline: 100, budget: openBudget(), random: () => 0.5 });
    expect(late.next(failure(503), true, 100)).toEqual({ retry: false, stop: 'deadline' });
    const broke = new RetryPlan({ policy: policy(), method: 'GET', deadline: 10_000, budget: { canRetry: () => false, withdraw: () => undefined } });
    expect(broke.next(failure(503), true, 0)).toEqual({ retry: false, stop: 'budget' });
  });

  it('counts the backoff against the deadline', () => {
    const plan = new RetryPlan({ policy: policy({ backoff: { base: '100ms', max: '100ms' } }), method: 'GET', deadline: 1_000, budget: openBudget(), random: () => 0.99 });
    expect(plan.next(failure(503), true, 950)).toEqual({ retry: false, stop: 'deadline' });
    expect(plan.next(failure(503), true, 800)).toMatchObject({ retry: true, delayMs: 99 });
  });

  it('without a policy: one retry of an idempotent request after a reset on a reused connection, and only one', () => {
    const budget = openBudget();
    const plan = new RetryPlan({ policy: undefined, method: 'GET', deadline: 10_000, budget });
    expect(plan.next(failure('reset'), true, 0)).toEqual({ retry: false, stop: undefined });
    expect(plan.next(failure('reset', true), true, 0)).toEqual({ retry: true, delayMs: 0, reason: 'reset' });
    expect(plan.next(failure('reset', true), true, 0)).toEqual({ retry: false, stop: undefined });
    expect(budget.withdrawn).toBe(0);
    const post = new RetryPlan({ policy: undefined, method: 'POST', deadline: 10_000, budget });
    expect(post.next(failure('reset', true), false, 0)).toEqual({ retry: false, stop: undefined });
  });

  it('the reused-connection retry also applies when the policy said no', () => {
    const plan = new RetryPlan({ policy: policy({ attempts: 1 }), method: 'GET', deadline: 10_000, budget: openBudget() });
    expect(plan.next(failure('reset', true), true, 0)).toMatchObject({ retry: true, reason: 'reset' });
  });

  it('works with the real budget: a hard failure gets ratio * requests + floor retries', () => {
    const budget = new RetryBudget();
    const config = policy({ attempts: 5, budget: { ratio: 0.2, minPerSecond: 1 } });
    let retries = 0;
    for (let i = 0; i < 200; i++) {
      budget.deposit(i);
      const plan = new RetryPlan({ policy: config, method: 'GET', deadline: Infinity, budget, random: () => 0 });
      while (plan.next(failure(503), true, i).retry) retries++;
    }
    expect(retries).toBe(0.2 * 200 + 1 * 10);
  });
});
