/**
 * The hot-path metrics (observe/metrics.ts) must read exactly like the
 * prom-client metrics they stand in for: same text lines, same cluster sums.
 */
import { describe, expect, it } from 'vitest';
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { HotCounter, HotHistogram } from '../src/observe/metrics.ts';

const BUCKETS = [0.001, 0.01, 0.1, 1];
/** On, between and beyond the bounds, for two label sets. */
const OBSERVED: Array<[{ route: string; code: string }, number]> = [
  [{ route: 'a', code: '200' }, 0.0005],
  [{ route: 'a', code: '200' }, 0.001],
  [{ route: 'a', code: '200' }, 0.05],
  [{ route: 'b', code: '503' }, 0.1],
  [{ route: 'a', code: '200' }, 7],
  [{ route: 'b', code: '503' }, 0.0001],
];

function pair(): { hot: Registry; plain: Registry; hotHistogram: HotHistogram<'route' | 'code'>; plainHistogram: Histogram<'route' | 'code'> } {
  const hot = new Registry();
  const plain = new Registry();
  const config = { name: 'h_seconds', help: 'a histogram', labelNames: ['route', 'code'] as const, buckets: BUCKETS };
  return {
    hot,
    plain,
    hotHistogram: new HotHistogram({ ...config, registers: [hot] }),
    plainHistogram: new Histogram({ ...config, registers: [plain] }),
  };
}

describe('HotHistogram', () => {
  it('reads like a prom-client Histogram fed the same observations', async () => {
    const { hot, plain, hotHistogram, plainHistogram } = pair();
    for (const [labels, value] of OBSERVED) {
      hotHistogram.series(labels).observe(value);
      plainHistogram.observe(labels, value);
    }
    const text = await hot.metrics();
    expect(text).toBe(await plain.metrics());
    expect(text).toContain('h_seconds_bucket{le="0.001",route="a",code="200"} 2');
    expect(text).toContain('h_seconds_bucket{le="+Inf",route="a",code="200"} 4');
  });

  it('sums across workers as prom-client does (AggregatorRegistry)', async () => {
    const workers = [pair(), pair()];
    for (const [index, [labels, value]] of OBSERVED.entries()) {
      const worker = workers[index % 2];
      worker.hotHistogram.series(labels).observe(value);
      worker.plainHistogram.observe(labels, value);
    }
    const merged = async (pick: 'hot' | 'plain') =>
      AggregatorRegistry.aggregate(await Promise.all(workers.map((worker) => worker[pick].getMetricsAsJSON()))).metrics();
    expect(await merged('hot')).toBe(await merged('plain'));
  });

  it('reset() empties it', async () => {
    const { hot, hotHistogram } = pair();
    hotHistogram.series({ route: 'a', code: '200' }).observe(1);
    hot.resetMetrics();
    expect(await hot.metrics()).not.toContain('h_seconds_bucket');
  });
});

describe('HotCounter', () => {
  it('reads like a prom-client Counter fed the same increments', async () => {
    const hot = new Registry();
    const plain = new Registry();
    const config = { name: 'c_total', help: 'a counter', labelNames: ['route', 'code'] as const };
    const hotCounter = new HotCounter({ ...config, registers: [hot] });
    const plainCounter = new Counter({ ...config, registers: [plain] });
    for (const [labels, value] of OBSERVED) {
      hotCounter.series(labels).inc(value);
      plainCounter.inc(labels, value);
    }
    expect(await hot.metrics()).toBe(await plain.metrics());
  });
});
