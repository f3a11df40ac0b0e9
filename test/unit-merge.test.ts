import { describe, expect, it } from 'vitest';
import { mergeUpstreamViews, oneCircuitState, type MetricsJson } from '../src/cluster/merge.ts';

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

describe('oneCircuitState (workers: one sidecar_circuit_state per upstream)', () => {
  const circuit = (states: Record<string, string>) =>
    [
      {
        name: 'sidecar_circuit_state',
        help: 'h',
        type: 'gauge',
        aggregator: 'max',
        values: Object.entries(states).flatMap(([upstream, current]) =>
          ['closed', 'open', 'half_open'].map((state) => ({ value: state === current ? 1 : 0, labels: { upstream, state } })),
        ),
      },
      { name: 'other', help: 'h', type: 'counter', aggregator: 'sum', values: [{ value: 1, labels: {} }] },
    ] as unknown as MetricsJson;

  it('keeps the most open state of each upstream, once, and every other metric as it was', () => {
    const merged = oneCircuitState([circuit({ a: 'closed', b: 'closed' }), circuit({ a: 'half_open', b: 'closed' }), circuit({ a: 'open', b: 'closed' })]);
    const states = merged.flatMap((metrics) => metrics.filter((metric) => metric.name === 'sidecar_circuit_state'));
    expect(states).toHaveLength(1);
    const on = states[0].values.filter((value) => value.value === 1).map((value) => [value.labels.upstream, value.labels.state]);
    expect(on).toEqual([
      ['a', 'open'],
      ['b', 'closed'],
    ]);
    expect(merged.every((metrics) => metrics.some((metric) => metric.name === 'other'))).toBe(true);
  });
});
