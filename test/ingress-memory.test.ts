import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { ALLOWED_GROWTH, MiB, lazyBody, peakRss, spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';

const TOTAL = 100 * MiB;

describe('bodies stream with bounded memory (sidecar in its own process)', () => {
  let upstream: TestServer;
  let sidecar: SidecarProcess;
  let received = 0;

  beforeAll(async () => {
    upstream = await startHttpServer((req, res) => {
      if (req.url === '/download' || req.url === '/warm') {
        const total = req.url === '/warm' ? 32 * MiB : TOTAL;
        res.writeHead(200, { 'content-length': total });
        lazyBody(total).pipe(res);
        return;
      }
      let bytes = 0;
      req.on('data', (chunk: Buffer) => (bytes += chunk.length));
      req.on('end', () => {
        received = bytes;
        res.end(String(bytes));
      });
    });
    const file = writeConfig(`
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: false }
upstreams:
  up: { endpoints: [${upstream.url}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: / }, upstream: up }
`);
    sidecar = await spawnSidecar(['--config', file]);
  });
  afterAll(async () => {
    await sidecar.stop();
    await upstream.close();
  });

  it('streams a 100 MiB upload and a 100 MiB download without growing memory', async () => {
    const url = (path: string) => `http://127.0.0.1:${sidecar.ingressPort}${path}`;
    // Warm up (32 MiB each way) so the baseline includes pools, parsers, JIT and the heap's working size.
    await (await request(url('/warm-upload'), { method: 'POST', body: lazyBody(32 * MiB) })).body.text();
    for await (const chunk of (await request(url('/warm'))).body) void chunk;
    const baseline = peakRss(sidecar.child.pid!);

    const upload = await request(url('/upload'), { method: 'POST', body: lazyBody(TOTAL) });
    expect(await upload.body.text()).toBe(String(TOTAL));
    expect(received).toBe(TOTAL);

    const download = await request(url('/download'));
    let downloaded = 0;
    for await (const chunk of download.body) downloaded += (chunk as Buffer).length;
    expect(downloaded).toBe(TOTAL);

    const growth = peakRss(sidecar.child.pid!) - baseline;
    expect(growth).toBeLessThan(ALLOWED_GROWTH);
  });
});
