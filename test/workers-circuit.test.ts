/**
 * `workers: 2`, each worker with its own breaker: /metrics shows one
 * `sidecar_circuit_state` per upstream (the most open, as /upstreams says),
 * not closed=1 and open=1 at once after summing up the processes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { freshRequest } from './helpers/cluster.ts';
import { closedPort, startHttpServer, type TestServer } from './helpers/servers.ts';
import { spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';

describe('workers: one circuit state per upstream', () => {
  let failing: TestServer;
  let sidecar: SidecarProcess;
  let ingressPort: number;
  let adminPort: number;

  beforeAll(async () => {
    failing = await startHttpServer((req, res) => {
      req.resume();
      res.statusCode = 500;
      res.end('broken');
    });
    ingressPort = await closedPort();
    adminPort = await closedPort();
    const file = writeConfig(`
admin: { listen: 127.0.0.1:${adminPort} }
log: { level: info, access: false }
workers: 2
upstreams:
  flaky: { endpoints: [${failing.url}], breaker: { errorRate: 0.5, minRequests: 2, window: 30s, openFor: 60s } }
ingress:
  listen: 127.0.0.1:${ingressPort}
  routes:
    - { name: flaky, match: { path: / }, upstream: flaky }
`);
    sidecar = await spawnSidecar(['--config', file]);
  });
  afterAll(async () => {
    await sidecar?.stop();
    await failing?.close();
  });

  const admin = async (path: string) => (await request(`http://127.0.0.1:${adminPort}${path}`)).body.text();

  it('shows the open state alone once a worker opened its breaker', async () => {
    let breaker = 'closed';
    for (let i = 0; i < 100 && breaker !== 'open'; i++) {
      expect([500, 503]).toContain((await freshRequest(ingressPort)).status);
      breaker = (JSON.parse(await admin('/upstreams')) as { upstreams: { flaky: { breaker: string } } }).upstreams.flaky.breaker;
    }
    expect(breaker).toBe('open');
    const states = [...(await admin('/metrics')).matchAll(/^sidecar_circuit_state\{upstream="flaky",state="(\w+)"\} (\d+)$/gm)].map(([, state, value]) => [state, Number(value)]);
    expect(states.filter(([, value]) => value === 1)).toEqual([['open', 1]]);
    expect(states.map(([state]) => state).sort()).toEqual(['closed', 'half_open', 'open']);
  });
});
