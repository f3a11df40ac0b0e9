import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { closedPort, startHttpServer, type TestServer } from './helpers/servers.ts';
import { spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';

/** `workers: 2`: a primary (admin, watcher) and two workers on SO_REUSEPORT listeners. */
describe('workers (node:cluster with reusePort)', () => {
  let upstream: TestServer;
  let sidecar: SidecarProcess;
  let file: string;
  let ingressPort: number;
  let adminPort: number;

  const config = (version: string) => `
admin: { listen: 127.0.0.1:${adminPort} }
log: { level: info, access: true }
workers: 2
upstreams: { app: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:${ingressPort}
  routes:
    - { name: app, match: { path: / }, upstream: app, headers: { response: { add: { x-config-version: "${version}" } } } }
`;

  /** Each request on a new connection, so the kernel picks a worker each time. */
  async function freshRequest(path = '/'): Promise<{ status: number; version: string | undefined }> {
    const agent = new Agent({ pipelining: 0 });
    try {
      const response = await request(`http://127.0.0.1:${ingressPort}${path}`, { dispatcher: agent });
      await response.body.text();
      return { status: response.statusCode, version: response.headers['x-config-version'] as string | undefined };
    } finally {
      await agent.close();
    }
  }

  const admin = (path: string, method: 'GET' | 'POST' = 'GET') => request(`http://127.0.0.1:${adminPort}${path}`, { method });

  beforeAll(async () => {
    upstream = await startHttpServer((_req, res) => res.end('ok'));
    ingressPort = await closedPort();
    adminPort = await closedPort();
    file = writeConfig(config('one'));
    sidecar = await spawnSidecar(['--config', file]);
  });
  afterAll(async () => {
    await sidecar?.stop();
    await upstream.close();
  });

  it('serves from both workers, each its own process', async () => {
    for (let i = 0; i < 40; i++) expect((await freshRequest(`/n${i}`)).status).toBe(200);
    // Access lines are written in batches, at most 200 ms late.
    const accessPids = () => new Set(sidecar.lines.filter((line) => line.log === 'access').map((line) => line.pid));
    for (let i = 0; i < 40 && sidecar.lines.filter((line) => line.log === 'access').length < 40; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const pids = accessPids();
    expect(pids.size).toBe(2);
    expect(pids.has(sidecar.child.pid)).toBe(false); // the primary carries no traffic
  });

  it('the admin port sums the workers: metrics and upstream state', async () => {
    const metrics = await (await admin('/metrics')).body.text();
    const served = /sidecar_requests_total\{listener="ingress",route="app",upstream="app",method="GET",code="200",protocol="1.1"\} (\d+)/.exec(metrics);
    expect(Number(served?.[1])).toBeGreaterThanOrEqual(40);
    const upstreams = (await (await admin('/upstreams')).body.json()) as { workers: number; upstreams: Record<string, unknown> };
    expect(upstreams.workers).toBe(2);
    expect(upstreams.upstreams.app).toMatchObject({ breaker: 'none', endpoints: [{ url: upstream.url, healthy: true }] });
  });

  it('a reload reaches every worker', async () => {
    writeFileSync(file, config('two'));
    const reload = await admin('/reload', 'POST');
    expect(reload.statusCode).toBe(200);
    await reload.body.text();
    for (let i = 0; i < 20; i++) expect((await freshRequest()).version).toBe('two');
  });

  it('a worker that dies is replaced, and traffic goes on', async () => {
    const workerPid = sidecar.lines.find((line) => line.msg === 'worker listening')!.workerPid as number;
    const seen = sidecar.lines.length;
    process.kill(workerPid, 'SIGKILL');
    let replaced = false;
    for (let i = 0; i < 100 && !replaced; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      replaced = sidecar.lines.slice(seen).some((line) => line.msg === 'worker listening' && line.listening === 2);
    }
    expect(replaced).toBe(true);
    expect((await admin('/readyz')).statusCode).toBe(200);
    for (let i = 0; i < 10; i++) expect((await freshRequest()).status).toBe(200);
  });

  it('SIGTERM drains the workers and exits 0', async () => {
    expect(await sidecar.stop('SIGTERM')).toBe(0);
  });

  it('refuses port 0 for the proxy listeners with several workers', async () => {
    const bad = writeConfig('workers: 2\ningress: { listen: 127.0.0.1:0 }\n');
    const check = await spawnSidecar(['check', '--config', bad], { waitListening: false });
    expect(await check.exited).toBe(1);
    expect(check.stderr()).toContain('ingress.listen: port 0 cannot be shared by 2 workers');
  });
});
