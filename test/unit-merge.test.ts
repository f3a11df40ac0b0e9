import { describe, expect, it } from 'vitest';
import { mergeUpstreamViews } from '../src/cluster/merge.ts';

describe('mergeUpstreamViews (workers: one /upstreams answer from each worker)', () => {
  const view = (breaker: string, healthy: boolean, ejected: boolean, inFlight: number) => ({
    upstreams: { app: { breaker, endpoints: [{ url: 'http://127.0.0.1:1', healthy, ejected, inFlight }] } },
  });

  it('takes the most open breaker, healthy only when all agree, ejected when any, in-flight summed', () => {
    const merged = mergeUpstreamViews([view('closed', true, false, 2), view('half_open', false, true, 3), view('closed', true, false, 0)]);
    expect(merged).toEqual({
      workers: 3,
      upstreams: { app: { breaker: 'half_open', endpoints: [{ url: 'http://127.0.0.1:1', healthy: false, ejected: true, inFlight: 5 }] } },
    });
  });

  it('skips workers that did not answer', () => {
    expect(mergeUpstreamViews([undefined, view('open', true, false, 1)]).workers).toBe(1);
  });
});
