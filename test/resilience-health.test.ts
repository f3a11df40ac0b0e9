import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { eventually, upstreamsView } from './helpers/misbehave.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

interface Checked {
  server: TestServer;
  /** What /healthz answers. */
  passing: boolean;
  /** Requests other than health probes. */
  traffic: number;
  probes: number;
}

async function checkedServer(name: string): Promise<Checked> {
  const state = { passing: true, traffic: 0, probes: 0 } as Checked;
  state.server = await startHttpServer((req, res) => {
    if (req.url === '/healthz') {
      state.probes++;
      res.writeHead(state.passing ? 200 : 503);
      res.end();
      return;
    }
    state.traffic++;
    res.end(name);
  });
  return state;
}

describe('active health checks', () => {
  let a: Checked;
  let b: Checked;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    a = await checkedServer('a');
    b = await checkedServer('b');
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  checked:
    endpoints: [${a.server.url}, ${b.server.url}]
    healthCheck: { path: /healthz, interval: 100ms, timeout: 500ms, unhealthyAfter: 2, healthyAfter: 2 }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: / }, upstream: checked }
`);
  });
  afterAll(async () => {
    await sidecar.close();
    await Promise.all([a.server.close(), b.server.close()]);
  });

  const healthOf = async () => (await upstreamsView(sidecar.admin('/upstreams'))).checked.endpoints.map((e) => e.healthy);
  async function send(n: number): Promise<Array<{ status: number; body: string; error: unknown }>> {
    const answers = [];
    for (let i = 0; i < n; i++) {
      const response = await request(sidecar.url('/'));
      answers.push({ status: response.statusCode, body: await response.body.text(), error: response.headers['x-sidecar-error'] });
    }
    return answers;
  }

  it('endpoints are healthy until their checks fail, and probes go out', async () => {
    expect(await healthOf()).toEqual([true, true]);
    expect(await eventually(() => a.probes >= 2 && b.probes >= 2, 60, 50)).toBe(true);
    const bodies = (await send(10)).map((answer) => answer.body);
    expect(bodies).toContain('a');
    expect(bodies).toContain('b');
  });

  it('takes an endpoint out after unhealthyAfter failed checks: it gets no traffic', async () => {
    a.passing = false;
    expect(await eventually(async () => (await healthOf())[0] === false, 60, 50)).toBe(true);
    const before = a.traffic;
    const answers = await send(20);
    expect(answers.every((answer) => answer.status === 200 && answer.body === 'b')).toBe(true);
    expect(a.traffic).toBe(before);
  });

  it('puts it back in after healthyAfter passing checks', async () => {
    a.passing = true;
    expect(await eventually(async () => (await healthOf())[0] === true, 60, 50)).toBe(true);
    const bodies = (await send(10)).map((answer) => answer.body);
    expect(bodies).toContain('a');
  });

  it('none healthy: 503 no_healthy_endpoint without touching either', async () => {
    a.passing = false;
    b.passing = false;
    expect(await eventually(async () => (await healthOf()).every((healthy) => !healthy), 60, 50)).toBe(true);
    const traffic = a.traffic + b.traffic;
    const [answer] = await send(1);
    expect(answer).toMatchObject({ status: 503, error: 'no_healthy_endpoint' });
    expect(a.traffic + b.traffic).toBe(traffic);
    a.passing = true;
    b.passing = true;
  });
});
