import { describe, expect, it } from 'vitest';
import { chooseIndex, untried, type Cursor } from '../src/upstream/balance.ts';

const endpoints = (...inFlight: number[]) => inFlight.map((n) => ({ inFlight: n }));

/** A deterministic sequence of "random" numbers. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length];
}

describe('selection policies', () => {
  it('round-robin walks the candidates in order and wraps', () => {
    const cursor: Cursor = { value: 0 };
    const list = endpoints(0, 0, 0);
    expect(Array.from({ length: 7 }, () => chooseIndex('round-robin', list, cursor))).toEqual([0, 1, 2, 0, 1, 2, 0]);
  });

  it('round-robin over a shrunk list stays in range', () => {
    const cursor: Cursor = { value: 5 };
    expect(chooseIndex('round-robin', endpoints(0, 0), cursor)).toBe(1);
  });

  it('random is uniform over the candidates', () => {
    const counts = [0, 0, 0, 0];
    let seed = 1;
    const lcg = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 4000; i++) counts[chooseIndex('random', endpoints(0, 0, 0, 0), { value: 0 }, lcg)]++;
    for (const count of counts) expect(count).toBeGreaterThan(800);
  });

  it('least-request (P2C): of two distinct random candidates, the one with fewer in flight', () => {
    const list = endpoints(5, 1, 9);
    // a = floor(0.0 * 3) = 0, b = floor(0.4 * 2) = 0 -> bumped to 1: 0 (5) vs 1 (1) -> 1
    expect(chooseIndex('least-request', list, { value: 0 }, sequence(0.0, 0.4))).toBe(1);
    // a = 2 (9), b = floor(0.0 * 2) = 0 (5) -> 0
    expect(chooseIndex('least-request', list, { value: 0 }, sequence(0.9, 0.0))).toBe(0);
    // the two candidates are never the same endpoint
    for (let i = 0; i < 100; i++) {
      const r = Math.random();
      const pick = chooseIndex('least-request', endpoints(3, 3), { value: 0 }, sequence(r, 0));
      expect([0, 1]).toContain(pick);
    }
  });

  it('least-request never picks the busiest of many when all others are idle more often than chance', () => {
    const list = endpoints(0, 0, 0, 100);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 3000; i++) counts[chooseIndex('least-request', list, { value: 0 })]++;
    expect(counts[3]).toBe(0); // it can only win against itself, and the two candidates are distinct
  });

  it('a single candidate is always chosen', () => {
    for (const policy of ['round-robin', 'least-request', 'random'] as const) {
      expect(chooseIndex(policy, endpoints(7), { value: 3 })).toBe(0);
    }
  });

  it('a retry prefers endpoints this request has not tried', () => {
    const [a, b, c] = ['a', 'b', 'c'];
    expect(untried([a, b, c], new Set([a]))).toEqual([b, c]);
    expect(untried([a, b], new Set([a, b]))).toEqual([a, b]);
    expect(untried([a], undefined)).toEqual([a]);
  });
});
