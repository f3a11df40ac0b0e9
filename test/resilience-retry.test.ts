import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { closedPort } from './helpers/servers.ts';
import { metricValue, reuseResetServer, scriptedServer, type Behaviour, type ScriptedServer } from './helpers/misbehave.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

let made = 0;

/**
 * A sidecar with one route `/` to one scripted upstream, with the given route
 * keys. Each gets its own upstream name (u1, u2, ...): metrics are per process.
 */
async function withUpstream(script: readonly Behaviour[], routeKeys: string): Promise<{ upstream: ScriptedServer; sidecar: RunningSidecar; name: string }> {
  const upstream = await scriptedServer('u', script);
  const name = `u${++made}`;
  const sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  ${name}: { endpoints: [${upstream.url}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: / }, upstream: ${name}${routeKeys ? `, ${routeKeys}` : ''} }
`);
  return { upstream, sidecar, name };
}

const RETRY = `retry: { attempts: 3, on: [connect-failure, reset, timeout, 502, 503, 504], perTryTimeout: 250ms, backoff: { base: 5ms, max: 20ms } }`;

describe('retries against misbehaving upstreams', () => {
  const open: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((thing) => thing.close()));
  });
  async function setup(script: readonly Behaviour[], routeKeys: string) {
    const made = await withUpstream(script, routeKeys);
    open.push(made.sidecar, made.upstream);
    return made;
  }

  const flaky: Array<[string, Behaviour]> = [
    ['503 without Retry-After', { status: 503 }],
    ['503 with Retry-After (honoured up to backoff.max)', { status: 503, headers: { 'retry-after': '30' } }],
    ['a reset before the response head', 'reset'],
    ['a stall past perTryTimeout', 'stall'],
    ['a first byte slower than perTryTimeout', { slowHeadMs: 1_000 }],
  ];
  for (const [what, behaviour] of flaky) {
    it(`fails twice with ${what}, then succeeds: 200 after 3 attempts`, async () => {
      const { upstream, sidecar } = await setup([behaviour, behaviour, 'ok'], RETRY);
      const response = await request(sidecar.url('/thing'));
      expect(response.statusCode).toBe(200);
      expect(await response.body.text()).toBe('ok u');
      expect(response.headers['x-sidecar-attempts']).toBe('3');
      expect(upstream.hits()).toBe(3);
    });
  }

  it('a slow first byte within perTryTimeout is no failure: one attempt, no header', async () => {
    const { upstream, sidecar } = await setup([{ slowHeadMs: 50 }, 'ok'], RETRY);
    const response = await request(sidecar.url('/'));
    expect(response.statusCode).toBe(200);
    await response.body.text();
    expect(response.headers['x-sidecar-attempts']).toBeUndefined();
    expect(upstream.hits()).toBe(1);
  });

  it('every try failing: our own 502 carries x-sidecar-attempts, retries stop as exhausted', async () => {
    const { upstream, sidecar, name } = await setup(['reset'], RETRY);
    const response = await request(sidecar.url('/'));
    expect(response.statusCode).toBe(502);
    expect(response.headers['x-sidecar-error']).toBe('upstream_reset');
    expect(response.headers['x-sidecar-attempts']).toBe('3');
    await response.body.text();
    expect(upstream.hits()).toBe(3);
    const metrics = sidecar.admin('/metrics');
    expect(await metricValue(metrics, 'sidecar_upstream_retries_total', { upstream: name, reason: 'reset' })).toBe(2);
    expect(await metricValue(metrics, 'sidecar_upstream_retry_stops_total', { upstream: name, reason: 'exhausted' })).toBe(1);
  });

  it('a retryable status on the last try reaches the client as the upstream sent it', async () => {
    const { sidecar } = await setup([{ status: 503, headers: { 'x-from': 'upstream' } }], RETRY);
    const response = await request(sidecar.url('/'));
    expect(response.statusCode).toBe(503);
    expect(response.headers['x-from']).toBe('upstream');
    expect(response.headers['x-sidecar-error']).toBeUndefined();
    expect(response.headers['x-sidecar-attempts']).toBe('3');
    expect(await response.body.text()).toBe('status 503 from u');
  });

  it('a status not listed in retry.on is passed on at once', async () => {
    const { upstream, sidecar } = await setup([{ status: 500 }, 'ok'], RETRY);
    const response = await request(sidecar.url('/'));
    expect(response.statusCode).toBe(500);
    await response.body.text();
    expect(upstream.hits()).toBe(1);
  });

  it('nothing is retried once response bytes reached the client (reset mid-body)', async () => {
    const { upstream, sidecar } = await setup(['midbody-reset', 'ok'], RETRY);
    const response = await request(sidecar.url('/'));
    expect(response.statusCode).toBe(200);
    await expect(response.body.text()).rejects.toThrow();
    expect(upstream.hits()).toBe(1);
  });

  it('the route timeout bounds all tries together: 504, retries stop on the deadline', async () => {
    const { upstream, sidecar, name } = await setup(['stall'], `timeout: 600ms, retry: { attempts: 10, on: [timeout], perTryTimeout: 200ms, backoff: { base: 1ms, max: 2ms } }`);
    const response = await request(sidecar.url('/'));
    expect(response.statusCode).toBe(504);
    expect(response.headers['x-sidecar-error']).toBe('upstream_timeout');
    await response.body.text();
    expect(upstream.hits()).toBeGreaterThanOrEqual(2);
    expect(upstream.hits()).toBeLessThanOrEqual(4);
    expect(await metricValue(sidecar.admin('/metrics'), 'sidecar_upstream_retry_stops_total', { upstream: name, reason: 'deadline' })).toBe(1);
  });

  it('a POST is not retried by default (not an idempotent method)', async () => {
    const { upstream, sidecar, name } = await setup([{ status: 503 }, 'ok'], RETRY);
    const response = await request(sidecar.url('/'), { method: 'POST', body: 'payment' });
    expect(response.statusCode).toBe(503);
    expect(response.headers['x-sidecar-attempts']).toBeUndefined();
    await response.body.text();
    expect(upstream.hits()).toBe(1);
    expect(await metricValue(sidecar.admin('/metrics'), 'sidecar_upstream_retry_stops_total', { upstream: name, reason: 'not_replayable' })).toBe(1);
  });

  it('a POST the route lists in retry.methods is retried with the same body', async () => {
    const { upstream, sidecar } = await setup(['reset', 'reset', 'ok'], `retry: { attempts: 3, on: [reset], methods: [POST], backoff: { base: 1ms, max: 2ms } }`);
    const response = await request(sidecar.url('/'), { method: 'POST', body: 'x'.repeat(5_000) });
    expect(response.statusCode).toBe(200);
    expect(response.headers['x-sidecar-attempts']).toBe('3');
    await response.body.text();
    expect(upstream.bodies).toEqual(['x'.repeat(5_000), 'x'.repeat(5_000), 'x'.repeat(5_000)]);
  });

  it('without a retry policy nothing is retried (a reset on a fresh connection)', async () => {
    const { upstream, sidecar } = await setup(['reset', 'ok'], '');
    const response = await request(sidecar.url('/'));
    expect(response.statusCode).toBe(502);
    await response.body.text();
    expect(upstream.hits()).toBe(1);
  });
});

describe('a retry goes to a different endpoint', () => {
  let sidecar: RunningSidecar;
  let good: ScriptedServer;
  beforeAll(async () => {
    good = await scriptedServer('good', ['ok']);
    const refused = await closedPort();
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  two: { endpoints: [http://127.0.0.1:${refused}, ${good.url}], connectTimeout: 500ms }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: / }, upstream: two, retry: { attempts: 2, on: [connect-failure], backoff: { base: 1ms, max: 2ms } } }
`);
  });
  afterAll(async () => {
    await sidecar.close();
    await good.close();
  });

  it('connection refused on one endpoint: every request still succeeds, on its second try at most', async () => {
    const attempts: string[] = [];
    for (let i = 0; i < 10; i++) {
      const response = await request(sidecar.url('/'));
      expect(response.statusCode).toBe(200);
      expect(await response.body.text()).toBe('ok good');
      attempts.push(String(response.headers['x-sidecar-attempts'] ?? '1'));
    }
    expect(attempts).toContain('2'); // round-robin sent some first tries to the refusing endpoint
    expect(attempts.every((n) => n === '1' || n === '2')).toBe(true);
  });
});

describe('a reset on a reused keep-alive connection, without a retry policy', () => {
  let sidecar: RunningSidecar;
  let upstream: Awaited<ReturnType<typeof reuseResetServer>>;
  beforeAll(async () => {
    upstream = await reuseResetServer();
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  flaky: { endpoints: [${upstream.url}], connections: 1 }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: / }, upstream: flaky }
`);
  });
  afterAll(async () => {
    await sidecar.close();
    await upstream.close();
  });

  it('an idempotent request is sent once more, on a new connection', async () => {
    const first = await request(sidecar.url('/one'));
    expect(first.statusCode).toBe(200);
    await first.body.text();
    const second = await request(sidecar.url('/two')); // goes out on the kept-alive connection, which the upstream resets
    expect(second.statusCode).toBe(200);
    expect(await second.body.text()).toBe('ok');
    expect(second.headers['x-sidecar-attempts']).toBe('2');
    expect(upstream.resets()).toBe(1);
    expect(upstream.served()).toBe(2);
  });

  it('a POST is not', async () => {
    const warm = await request(sidecar.url('/warm'));
    await warm.body.text();
    const resetsBefore = upstream.resets();
    const post = await request(sidecar.url('/post'), { method: 'POST' });
    expect(post.statusCode).toBe(502);
    expect(post.headers['x-sidecar-error']).toBe('upstream_reset');
    expect(post.headers['x-sidecar-attempts']).toBeUndefined();
    await post.body.text();
    expect(upstream.resets()).toBe(resetsBefore + 1);
  });
});
