/**
 * `workers: 2` with an active health check: the endpoint is probed from one
 * process (the primary), not once per process, and every worker routes by
 * its verdicts, a worker started later too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { freshRequest } from './helpers/cluster.ts';
import { closedPort, startHttpServer, type TestServer } from './helpers/servers.ts';
import { spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';
import { waitFor } from './helpers/reload.ts';

describe('workers: health checks run once, their verdicts reach every worker', () => {
  let upstream: TestServer;
  let sidecar: SidecarProcess;
  let ingressPort: number;
  let adminPort: number;
  let passing = true;
  let probes = 0;
  /** The client port of each probe: one process probes over one keep-alive connection. */
  const probeConnections = new Set<number>();

  beforeAll(async () => {
    upstream = await startHttpServer((req, res) => {
      if (req.url === '/healthz') {
        probes++;
        probeConnections.add(req.socket.remotePort!);
        res.statusCode = passing ? 200 : 503;
      }
      res.end('ok');
    });
    ingressPort = await closedPort();
    adminPort = await closedPort();
    const file = writeConfig(`
admin: { listen: 127.0.0.1:${adminPort} }
log: { level: info, access: true }
workers: 2
upstreams:
  app:
    endpoints: [${upstream.url}]
    healthCheck: { path: /healthz, interval: 100ms, timeout: 5s, unhealthyAfter: 1, healthyAfter: 1 }
ingress:
  listen: 127.0.0.1:${ingressPort}
  routes:
    - { name: app, match: { path: / }, upstream: app }
`);
    sidecar = await spawnSidecar(['--config', file]);
  });
  afterAll(async () => {
    await sidecar?.stop();
    await upstream?.close();
  });

  const fresh = async () => {
    const { status, headers } = await freshRequest(ingressPort);
    return { status, error: headers['x-sidecar-error'] };
  };

  const endpointHealthy = async (): Promise<boolean> => {
    const view = (await (await request(`http://127.0.0.1:${adminPort}/upstreams`)).body.json()) as { upstreams: { app: { endpoints: Array<{ healthy: boolean }> } } };
    return view.upstreams.app.endpoints[0].healthy;
  };

  it('probes the endpoint from one process only', async () => {
    await waitFor('10 probes', () => (probes >= 10 ? true : undefined), 15_000, 20);
    expect(probeConnections.size).toBe(1);
  });

  it('takes a failing endpoint out in every worker, and puts it back', async () => {
    passing = false;
    // /upstreams asks each worker after the primary told it the verdict: false means every worker has it.
    await waitFor('the endpoint to be unhealthy', async () => ((await endpointHealthy()) ? undefined : true), 10_000, 50);
    for (let i = 0; i < 20; i++) expect(await fresh()).toEqual({ status: 503, error: 'no_healthy_endpoint' });

    passing = true;
    await waitFor('the endpoint to be healthy', async () => ((await endpointHealthy()) ? true : undefined), 10_000, 50);
    for (let i = 0; i < 20; i++) expect((await fresh()).status).toBe(200);
    // Both workers served: each answered from the verdicts it was given.
    await waitFor('access lines of both workers', () => {
      const pids = new Set(sidecar.lines.filter((line) => line.log === 'access' && line.error === 'no_healthy_endpoint').map((line) => line.pid));
      return pids.size === 2 ? true : undefined;
    });
  });

  it('gives a worker started later the verdicts in force', async () => {
    passing = false;
    await waitFor('the endpoint to be unhealthy', async () => ((await endpointHealthy()) ? undefined : true), 10_000, 50);
    const workerPid = sidecar.lines.find((line) => line.msg === 'worker listening')!.workerPid as number;
    const seen = sidecar.lines.length;
    process.kill(workerPid, 'SIGKILL');
    await waitFor('a new worker', () => (sidecar.lines.slice(seen).some((line) => line.msg === 'worker listening' && line.listening === 2) ? true : undefined), 10_000, 50);
    for (let i = 0; i < 20; i++) expect(await fresh()).toEqual({ status: 503, error: 'no_healthy_endpoint' });
    expect(probeConnections.size).toBe(1);
  });
});
