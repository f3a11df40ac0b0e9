import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { metricValue, scriptedServer, type ScriptedServer } from './helpers/misbehave.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

const REQUESTS = 200;
const CONCURRENCY = 10;
const RATIO = 0.2;
const MIN_PER_SECOND = 1;
/** The budget's window: the floor allows MIN_PER_SECOND per second of it. */
const WINDOW_SECONDS = 10;

/** A hard-failing upstream must not see a retry storm, however many attempts the route allows. */
describe('retry budget under a hard failure', () => {
  let upstream: ScriptedServer;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    upstream = await scriptedServer('down', [{ status: 503 }]);
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  down: { endpoints: [${upstream.url}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - match: { path: / }
      upstream: down
      retry: { attempts: 5, on: [503], backoff: { base: 1ms, max: 2ms }, budget: { ratio: ${RATIO}, minPerSecond: ${MIN_PER_SECOND} } }
`);
  });
  afterAll(async () => {
    await sidecar.close();
    await upstream.close();
  });

  it(`attempts per request stay under 1 + ratio + floor (${REQUESTS} requests, attempts: 5)`, async () => {
    const statuses: number[] = [];
    let next = 0;
    const worker = async () => {
      while (next < REQUESTS) {
        next++;
        const response = await request(sidecar.url('/'));
        statuses.push(response.statusCode);
        await response.body.text();
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));

    expect(statuses).toHaveLength(REQUESTS);
    expect(statuses.every((status) => status === 503)).toBe(true); // the upstream's own 503, passed on
    const perRequest = upstream.hits() / REQUESTS;
    const bound = 1 + RATIO + (MIN_PER_SECOND * WINDOW_SECONDS) / REQUESTS;
    console.info(`budget: ${upstream.hits()} tries for ${REQUESTS} requests = ${perRequest.toFixed(3)} per request (bound ${bound}; without a budget: 5)`);
    expect(perRequest).toBeLessThanOrEqual(bound);
    expect(perRequest).toBeGreaterThan(1); // the budget did allow some retries
    const metrics = sidecar.admin('/metrics');
    expect(await metricValue(metrics, 'sidecar_upstream_retry_stops_total', { upstream: 'down', reason: 'budget' })).toBeGreaterThan(0);
    expect(await metricValue(metrics, 'sidecar_upstream_retries_total', { upstream: 'down', reason: '503' })).toBe(upstream.hits() - REQUESTS);
  });
});
