import { describe, expect, it } from 'vitest';
import { newTraceparent } from '../src/proxy/headers.ts';
import { traceIdOf } from '../src/observe/access-line.ts';

describe('newTraceparent (made in batches from one random buffer)', () => {
  it('makes valid, sampled, distinct traceparents across several refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const value = newTraceparent();
      expect(value).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      expect(traceIdOf(value)).toBe(value.slice(3, 35));
      seen.add(value);
    }
    expect(seen.size).toBe(300);
  });

  it('hands out strings that stay the same after the next batch is made', () => {
    const first = newTraceparent();
    const copy = `${first}`;
    for (let i = 0; i < 300; i++) newTraceparent();
    expect(first).toBe(copy);
  });
});
