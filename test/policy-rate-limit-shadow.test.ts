/**
 * `mode: shadow` (issue 19): a limit to try before enforcing it. Everything
 * goes through; what the limit would have refused is counted as
 * `shadow_limited`, what it allows as `allowed`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { metricValue } from './helpers/misbehave.ts';

describe('rateLimit: mode shadow', () => {
  let upstream: TestServer;
  let sidecar: RunningSidecar;
  let hits = 0;

  beforeAll(async () => {
    upstream = await startHttpServer((_req, res) => {
      hits++;
      res.end('ok');
    });
    sidecar = await startSidecar(`${TEST_BASE}
upstreams: { app: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: trial, match: { path: / }, upstream: app, rateLimit: { requests: 1, per: 1m, burst: 2, mode: shadow, headers: true } }
`);
  });
  afterAll(async () => {
    await sidecar?.close();
    await upstream?.close();
  });

  it('lets every request through and counts the ones it would have limited', async () => {
    const statuses = [];
    let last: Record<string, unknown> = {};
    for (let i = 0; i < 5; i++) {
      const response = await request(sidecar.url('/'));
      await response.body.dump();
      statuses.push(response.statusCode);
      last = response.headers;
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    expect(hits).toBe(5);
    // What the client is told is what the limit sees: nothing left.
    expect(last.ratelimit).toMatch(/^"trial";r=0;t=\d+$/);
    expect(last['x-sidecar-error']).toBeUndefined();
    const decisions = (outcome: string) => metricValue(sidecar.admin('/metrics'), 'sidecar_rate_limit_decisions_total', { listener: 'ingress', route: 'trial', outcome });
    expect(await decisions('allowed')).toBe(2);
    expect(await decisions('shadow_limited')).toBe(3);
    expect(await decisions('limited')).toBe(0);
  });
});
