import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { echoServer, startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

describe('admin port', () => {
  let echo: TestServer;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    echo = await echoServer();
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  echo: { endpoints: [${echo.url}] }
egress:
  listen: 127.0.0.1:0
  auth: { user: app, password: hunter2-secret }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: echo, match: { path: / }, upstream: echo }
`);
  });
  afterAll(async () => {
    await sidecar.close();
    await echo.close();
  });

  async function get(path: string) {
    const response = await request(sidecar.admin(path));
    return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
  }

  it('GET /healthz and /readyz answer 200 while serving', async () => {
    expect((await get('/healthz')).status).toBe(200);
    expect((await get('/readyz')).status).toBe(200);
  });

  it('GET /metrics is Prometheus text with the request counters of traffic just served', async () => {
    await (await request(sidecar.url('/a'))).body.text();
    const metrics = await get('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.headers['content-type']).toContain('text/plain');
    expect(metrics.text).toMatch(/sidecar_requests_total\{listener="ingress",route="echo",upstream="echo",method="GET",code="200",protocol="1.1"\} [1-9]/);
    expect(metrics.text).toContain('sidecar_request_duration_seconds_bucket');
    expect(metrics.text).toContain('sidecar_process_cpu_seconds_total');
    expect(metrics.text).toContain('sidecar_config_reloads_total{result="success"}');
  });

  it('GET /config shows hash, source, load time and the config with secrets redacted', async () => {
    const config = await get('/config');
    const body = JSON.parse(config.text) as { hash: string; source: string; loadedAt: string; config: { egress: { auth: { password: string } } } };
    expect(body.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(body.source).toBe(sidecar.file);
    expect(Number.isNaN(Date.parse(body.loadedAt))).toBe(false);
    expect(body.config.egress.auth.password).toBe('[redacted]');
    expect(config.text).not.toContain('hunter2-secret');
  });

  it('GET /upstreams lists endpoints with their state', async () => {
    const body = JSON.parse((await get('/upstreams')).text);
    expect(body.upstreams.echo).toMatchObject({
      breaker: 'none', // no breaker configured
      endpoints: [{ url: echo.url, healthy: true, ejected: false, inFlight: 0 }],
    });
  });

  it('unknown paths are 404 with the list of paths', async () => {
    const response = await get('/nope');
    expect(response.status).toBe(404);
    expect(JSON.parse(response.text).paths).toContain('/metrics');
  });

  it('/readyz is 503 while draining (an in-flight request holds the drain open)', async () => {
    let release: () => void = () => undefined;
    const slow = await startHttpServer((_req, res) => {
      release = () => res.end('done');
    });
    const held = await startSidecar(`${TEST_BASE}
upstreams: { slow: { endpoints: [${slow.url}] } }
ingress: { listen: 127.0.0.1:0, routes: [{ match: { path: / }, upstream: slow }] }
`);
    const inFlight = request(held.url('/hold'));
    for (let i = 0; i < 100 && held.sidecar.registry.get('slow')!.endpoints[0].inFlight === 0; i++) await new Promise((r) => setTimeout(r, 20));
    const stopping = held.sidecar.stop(5_000);
    const readyz = await request(held.admin('/readyz'));
    expect(readyz.statusCode).toBe(503);
    await readyz.body.text();
    release();
    expect(await (await inFlight).body.text()).toBe('done');
    await stopping;
    await held.close();
    await slow.close();
  });
});
