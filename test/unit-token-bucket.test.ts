/**
 * Token buckets refilled lazily and keys bounded (policy/token-bucket.ts),
 * driven with explicit times: no clock, no timer.
 */
import { describe, expect, it } from 'vitest';
import { KeyedBuckets } from '../src/policy/token-bucket.ts';

/** 10 requests per second (0.01 per ms), burst 5. */
const limits = { perMs: 0.01, capacity: 5, maxKeys: 3 };

describe('KeyedBuckets', () => {
  it('lets a burst of `capacity` through at once, then refuses, saying when the next token comes', () => {
    const buckets = new KeyedBuckets(limits);
    const takes = Array.from({ length: 6 }, () => buckets.take('a', 1_000));
    expect(takes.map((take) => take.allowed)).toEqual([true, true, true, true, true, false]);
    expect(takes.map((take) => take.remaining)).toEqual([4, 3, 2, 1, 0, 0]);
    expect(takes[5].nextMs).toBeCloseTo(100);
    expect(takes[5].fullMs).toBeCloseTo(500);
  });

  it('earns tokens by elapsed time, never beyond capacity', () => {
    const buckets = new KeyedBuckets(limits);
    for (let i = 0; i < 5; i++) buckets.take('a', 0);
    expect(buckets.take('a', 50).allowed).toBe(false); // half a token
    expect(buckets.take('a', 100).allowed).toBe(true); // one whole token at 100 ms
    expect(buckets.take('a', 100).allowed).toBe(false);
    // A long quiet time fills the bucket up to its capacity, not more.
    const after = Array.from({ length: 7 }, () => buckets.take('a', 100_000).allowed);
    expect(after.filter(Boolean)).toHaveLength(5);
  });

  it('keeps one bucket per key', () => {
    const buckets = new KeyedBuckets(limits);
    for (let i = 0; i < 5; i++) buckets.take('a', 0);
    expect(buckets.take('a', 0).allowed).toBe(false);
    expect(buckets.take('b', 0).allowed).toBe(true);
  });

  it('gives a token back', () => {
    const buckets = new KeyedBuckets(limits);
    for (let i = 0; i < 5; i++) buckets.take('a', 0);
    buckets.give('a');
    expect(buckets.take('a', 0).allowed).toBe(true);
    expect(buckets.take('a', 0).allowed).toBe(false);
  });

  it('holds at most maxKeys, evicting one not used since the last sweep', () => {
    const buckets = new KeyedBuckets(limits);
    buckets.take('a', 0);
    buckets.take('b', 0);
    buckets.take('c', 0);
    buckets.take('a', 0); // a is used again: b goes first
    buckets.take('d', 0);
    expect(buckets.size).toBe(3);
    // a kept its bucket (4 tokens left before this take, 3 after), b starts full again.
    expect(buckets.take('a', 0).remaining).toBe(2);
    expect(buckets.take('b', 0).remaining).toBe(4);
    expect(buckets.size).toBe(3);
  });

  it('stays at maxKeys under a flood of new keys', () => {
    const buckets = new KeyedBuckets({ ...limits, maxKeys: 1_000 });
    for (let i = 0; i < 100_000; i++) buckets.take(`key-${i}`, i);
    expect(buckets.size).toBe(1_000);
  });
});
