/**
 * `workers: 2`: the primary's /status.json counts every worker's requests
 * (the same merge as /metrics) and lists every worker's error answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { freshRequest } from './helpers/cluster.ts';
import { closedPort, echoServer, type TestServer } from './helpers/servers.ts';
import { spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';

describe('status with workers', () => {
  let echo: TestServer;
  let sidecar: SidecarProcess;
  let ingressPort: number;
  let adminPort: number;

  beforeAll(async () => {
    echo = await echoServer();
    ingressPort = await closedPort();
    adminPort = await closedPort();
    const file = writeConfig(`
admin: { listen: 127.0.0.1:${adminPort} }
log: { level: info, access: false }
workers: 2
upstreams:
  ok: { endpoints: [${echo.url}] }
ingress:
  listen: 127.0.0.1:${ingressPort}
  routes:
    - { name: app, match: { path: /app }, upstream: ok }
`);
    sidecar = await spawnSidecar(['--config', file]);
  });
  afterAll(async () => {
    await sidecar?.stop();
    await echo?.close();
  });

  it('sums the workers: N requests sent, N counted; every worker\'s errors listed', async () => {
    const sent = 40;
    for (let i = 0; i < sent; i++) expect((await freshRequest(ingressPort, i % 4 === 0 ? `/missing/${i}` : `/app/${i}`)).status).toBe(i % 4 === 0 ? 404 : 200);
    type Status = {
      workers: number;
      listeners: Array<{ name: string; total: Record<string, number> }>;
      routes: Array<{ name: string; total: Record<string, number> }>;
      recentErrors: Array<{ code: string; path: string }>;
    };
    const read = async () => (await (await request(`http://127.0.0.1:${adminPort}/status.json`)).body.json()) as Status;
    // A request counts once the server side of its response closed, a moment after the client read it: wait (bounded).
    let status = await read();
    for (let round = 0; round < 100 && (status.listeners[0]?.total.requests ?? 0) < sent; round++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      status = await read();
    }
    expect(status.workers).toBe(2);
    expect(status.listeners[0]).toMatchObject({ name: 'ingress', total: { requests: sent, '2xx': 30, '4xx': 10 } });
    expect(status.routes.find((route) => route.name === 'app')!.total.requests).toBe(30);
    const missing = status.recentErrors.filter((entry) => entry.code === 'no_route').map((entry) => entry.path);
    expect(missing.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `/missing/${i * 4}`).sort());
    const page = await request(`http://127.0.0.1:${adminPort}/`);
    expect(page.statusCode).toBe(200);
    expect(await page.body.text()).toContain('summed over 2 workers');
  });
});
