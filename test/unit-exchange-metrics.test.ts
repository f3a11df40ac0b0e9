/**
 * An Exchange's end counts the request in the series of its own labels, also
 * when consecutive requests differ in one label only (seriesOf keeps the last
 * labels' series), the client's HTTP version (`protocol`) included.
 */
import { describe, expect, it } from 'vitest';
import { Exchange } from '../src/observe/exchange.ts';
import { registry } from '../src/observe/metrics.ts';

async function count(route: string, method: string, code: string, protocol = '1.1'): Promise<number> {
  const text = await registry.getSingleMetricAsString('sidecar_requests_total');
  const line = text.split('\n').find((l) => l.startsWith(`sidecar_requests_total{listener="ingress",route="${route}",upstream="u",method="${method}",code="${code}",protocol="${protocol}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('Exchange metrics', () => {
  it('counts each request under its own route, method and status', async () => {
    const sequence: Array<[string, string, number, string?]> = [
      ['unit-a', 'GET', 200],
      ['unit-a', 'GET', 200],
      ['unit-a', 'GET', 200, '2'],
      ['unit-a', 'GET', 404],
      ['unit-b', 'GET', 404],
      ['unit-b', 'POST', 404],
      ['unit-a', 'GET', 200],
    ];
    for (const [route, method, status, protocol = '1.1'] of sequence) {
      const exchange = new Exchange('ingress', 'id', method, 'h', '/', false);
      exchange.protocol = protocol;
      exchange.route = route;
      exchange.setUpstream({ name: 'u', metricLabel: 'u' });
      exchange.status = status;
      exchange.finish();
    }
    expect(await count('unit-a', 'GET', '200')).toBe(3);
    expect(await count('unit-a', 'GET', '200', '2')).toBe(1);
    expect(await count('unit-a', 'GET', '404')).toBe(1);
    expect(await count('unit-b', 'GET', '404')).toBe(1);
    expect(await count('unit-b', 'POST', '404')).toBe(1);
  });
});
