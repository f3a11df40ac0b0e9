/**
 * State that lives outside the snapshot survives a reload that does not
 * touch its upstream: an open breaker stays open (SPEC "Hot reload": breaker
 * and health state of unchanged upstreams survive).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { request } from 'undici';
import { echoServer, startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { versionAt } from './helpers/reload.ts';

interface UpstreamsView {
  upstreams: Record<string, { breaker: string; endpoints: Array<{ url: string }> }>;
}

describe('reload: breaker state survives an unrelated change', () => {
  let failing: TestServer;
  let healthy: TestServer;
  let sidecar: RunningSidecar;
  let failingHits = 0;

  function config(n: number, extraUpstream = ''): string {
    return `${TEST_BASE}
upstreams:
  flaky:
    endpoints: [${failing.url}]
    breaker: { errorRate: 0.5, minRequests: 5, window: 30s, openFor: 60s }
  steady: { endpoints: [${healthy.url}] }
${extraUpstream}
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: flaky, match: { path: /flaky }, upstream: flaky }
    - { name: steady, match: { path: / }, upstream: steady, headers: { response: { add: { x-config-version: "${n}" } } } }
`;
  }

  beforeAll(async () => {
    failing = await startHttpServer((req, res) => {
      failingHits++;
      req.resume();
      res.statusCode = 500;
      res.end('broken');
    });
    healthy = await echoServer();
    sidecar = await startSidecar(config(1));
  });
  afterAll(async () => {
    await sidecar.close();
    await Promise.all([failing.close(), healthy.close()]);
  });

  async function get(path: string): Promise<{ status: number; error: string | undefined }> {
    const response = await request(sidecar.url(path));
    await response.body.dump();
    const error = response.headers['x-sidecar-error'];
    return { status: response.statusCode, error: typeof error === 'string' ? error : undefined };
  }

  async function breakerOf(name: string): Promise<string | undefined> {
    const response = await request(sidecar.admin('/upstreams'));
    return ((await response.body.json()) as UpstreamsView).upstreams[name]?.breaker;
  }

  it('opens on failures, and stays open through reloads that change other things', async () => {
    // Fail until the breaker opens: 5 failures are enough, 40 tries a generous cap.
    let opened = false;
    for (let i = 0; i < 40 && !opened; i++) opened = (await get('/flaky')).error === 'circuit_open';
    expect(opened).toBe(true);
    expect(await breakerOf('flaky')).toBe('open');
    const hitsWhenOpen = failingHits;
    expect(await get('/flaky')).toEqual({ status: 503, error: 'circuit_open' });

    // Unrelated changes: a new header value on another route, then a new upstream.
    writeFileSync(sidecar.file, config(2));
    const first = await request(sidecar.admin('/reload'), { method: 'POST' });
    expect(first.statusCode).toBe(200);
    await first.body.dump();
    expect(await versionAt(sidecar.url('/'))).toBe('2');
    expect(await breakerOf('flaky')).toBe('open');
    expect(await get('/flaky')).toEqual({ status: 503, error: 'circuit_open' });

    writeFileSync(sidecar.file, config(3, `  extra: { endpoints: [${healthy.url}] }`));
    const second = await request(sidecar.admin('/reload'), { method: 'POST' });
    expect(second.statusCode).toBe(200);
    await second.body.dump();
    expect(await versionAt(sidecar.url('/'))).toBe('3');
    expect(await breakerOf('flaky')).toBe('open');
    expect(await breakerOf('steady')).toBe('none'); // it has no breaker
    expect(await get('/flaky')).toEqual({ status: 503, error: 'circuit_open' });
    expect(failingHits).toBe(hitsWhenOpen); // nothing reached the failing upstream while open
  });
});
