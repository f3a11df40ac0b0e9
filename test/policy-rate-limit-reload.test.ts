/**
 * Reload and rate limits (issue 19): a route whose limit did not change keeps
 * its buckets, so an unrelated config change gives nobody a fresh burst; a
 * route whose limit changed starts over with the new one.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';

describe('rateLimit across a reload', () => {
  let upstream: TestServer;
  let sidecar: RunningSidecar;

  const config = (changedBurst: number, version: string) => `${TEST_BASE}
upstreams: { app: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - name: kept
      match: { path: /kept/ }
      upstream: app
      rateLimit: { requests: 1, per: 1m, burst: 2 }
      headers: { response: { add: { x-version: "${version}" } } }
    - { name: changed, match: { path: /changed/ }, upstream: app, rateLimit: { requests: 1, per: 1m, burst: ${changedBurst} } }
`;

  beforeAll(async () => {
    upstream = await startHttpServer((_req, res) => res.end('ok'));
    sidecar = await startSidecar(config(2, 'one'));
  });
  afterAll(async () => {
    await sidecar?.close();
    await upstream?.close();
  });

  async function statuses(path: string, count: number): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const response = await request(sidecar.url(path));
      await response.body.dump();
      out.push(response.statusCode);
    }
    return out;
  }

  it('keeps the buckets of an unchanged limit and starts a changed one over', async () => {
    expect(await statuses('/kept/x', 3)).toEqual([200, 200, 429]);
    expect(await statuses('/changed/x', 3)).toEqual([200, 200, 429]);

    writeFileSync(sidecar.file, config(3, 'two'));
    const result = await sidecar.sidecar.reload();
    expect(result.ok).toBe(true);
    const kept = await request(sidecar.url('/kept/x'));
    await kept.body.dump();
    // The route changed (its response header), its limit did not: the bucket is still empty.
    expect(kept.statusCode).toBe(429);
    expect(await statuses('/changed/x', 4)).toEqual([200, 200, 200, 429]);
  });
});
