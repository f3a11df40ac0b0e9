import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from './helpers/egress.ts';
import { spawnSidecar, writeConfig } from './helpers/process.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

/** Static routes through the whole sidecar: routing, fallthrough to the app, access log fields, metrics. */
describe('static routes through the sidecar', () => {
  let app: TestServer;
  let sidecar: RunningSidecar;
  const appSaw: string[] = [];

  beforeAll(async () => {
    app = await startHttpServer((req, res) => {
      appSaw.push(req.url ?? '');
      res.end(`app:${req.url}`);
    });
    // The public folder is written beside the YAML in the sidecar's temp dir.
    sidecar = await startSidecar(`${TEST_BASE}
upstreams: { app: { endpoints: [${app.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: assets, match: { path: /static/ }, static: { root: ./public, maxAge: 1h, immutable: true } }
    - { name: maybe, match: { path: /maybe/ }, static: { root: ./public, fallthrough: true } }
    - { name: app, match: { path: / }, upstream: app }
`, { 'public/css/site.css': 'body { color: red }' });
  });
  afterAll(async () => {
    await sidecar?.close();
    await app.close();
  });

  it('serves a file under the route prefix with cache headers, and never asks the app', async () => {
    const response = await request(sidecar.url('/static/css/site.css'));
    expect(response.statusCode).toBe(200);
    expect(await response.body.text()).toBe('body { color: red }');
    expect(response.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(response.headers['cache-control']).toBe('public, max-age=3600, immutable');
    expect(response.headers.etag).toMatch(/^"/);
    expect(response.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(appSaw).not.toContain('/static/css/site.css');

    const revalidated = await request(sidecar.url('/static/css/site.css'), { headers: { 'if-none-match': String(response.headers.etag), 'x-request-id': 'again' } });
    await revalidated.body.text();
    expect([revalidated.statusCode, revalidated.headers['x-request-id']]).toEqual([304, 'again']);
  });

  it('a miss on a fallthrough route goes on to the app', async () => {
    const response = await request(sidecar.url('/maybe/missing.txt'), { headers: { 'x-request-id': 'fell-through' } });
    expect(await response.body.text()).toBe('app:/maybe/missing.txt');
    expect(response.headers['x-request-id']).toBe('fell-through');
  });

  it('a miss without fallthrough is 404', async () => {
    const response = await request(sidecar.url('/static/nope.css'), { headers: { 'x-request-id': 'not-there' } });
    expect(response.statusCode).toBe(404);
    expect(response.headers['x-request-id']).toBe('not-there');
    await response.body.text();
  });

  it('counts static responses in the metrics', async () => {
    const metrics = await (await request(sidecar.admin('/metrics'))).body.text();
    expect(metrics).toMatch(/sidecar_static_responses_total\{route="assets",code="200"\} [1-9]/);
    expect(metrics).toMatch(/sidecar_requests_total\{listener="ingress",route="assets",upstream="",method="GET",code="200",protocol="1.1"\} [1-9]/);
  });
});

describe('static routes in the access log', () => {
  it('bytesOut is the body sent, for a file from memory and for one streamed from disk', async () => {
    const root = mkdtempSync(join(tmpdir(), 'sidecar-static-log-'));
    writeFileSync(join(root, 'small.txt'), 'x'.repeat(100));
    writeFileSync(join(root, 'big.bin'), Buffer.alloc(300 * 1024, 'y')); // over maxFileSize: streamed
    const config = writeConfig(`
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: true }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: files, match: { path: / }, static: { root: ${root}, cache: { maxFileSize: 64KiB } } }
`);
    const proc = await spawnSidecar(['--config', config]);
    try {
      for (const [path, size] of [['/small.txt', 100], ['/big.bin', 300 * 1024]] as const) {
        const response = await request(`http://127.0.0.1:${proc.ingressPort}${path}`);
        expect((await response.body.arrayBuffer()).byteLength).toBe(size);
      }
      const partial = await request(`http://127.0.0.1:${proc.ingressPort}/big.bin`, { headers: { range: 'bytes=0-9' } });
      expect(partial.statusCode).toBe(206);
      await partial.body.text();
      const line = (path: string, status: number) => proc.lines.find((l) => l.log === 'access' && l.path === path && l.status === status);
      await eventually(() => line('/big.bin', 206));
      expect(line('/small.txt', 200)?.bytesOut).toBe(100);
      expect(line('/big.bin', 200)?.bytesOut).toBe(300 * 1024);
      expect(line('/big.bin', 206)?.bytesOut).toBe(10);
    } finally {
      await proc.stop();
      rmSync(root, { recursive: true, force: true });
    }
  });
});
