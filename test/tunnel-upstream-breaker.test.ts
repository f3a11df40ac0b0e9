/**
 * A blind CONNECT tunnel to a logical name that cannot connect counts as a
 * failure of the upstream, like a request that cannot: for its breaker (open:
 * the next CONNECT is 503 circuit_open before `200 Connection Established`)
 * and for outlier ejection of the endpoint.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoThrough, openConnect } from './helpers/egress.ts';
import { upstreamsView } from './helpers/misbehave.ts';
import { startTcpServer } from './helpers/raw.ts';
import { closedPort } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

describe('tunnels that fail to connect count as upstream failures', () => {
  let echo: Awaited<ReturnType<typeof startTcpServer>>;
  let dead: number;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    echo = await startTcpServer((socket) => socket.pipe(socket));
    dead = await closedPort();
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  dead:
    endpoints: ["http://127.0.0.1:${dead}"]
    breaker: { errorRate: 0.5, minRequests: 3, window: 10s, openFor: 30s }
  pair:
    endpoints: ["http://127.0.0.1:${dead}", "http://127.0.0.1:${echo.port}"]
    balance: round-robin
    outlier: { consecutiveErrors: 2, ejectFor: 30s, maxEjectedPercent: 50 }
egress:
  listen: 127.0.0.1:0
  routes:
    - { name: dead, match: { host: dead.internal }, upstream: dead }
    - { name: pair, match: { host: pair.internal }, upstream: pair }
`);
  });
  afterAll(async () => {
    await sidecar.close();
    await echo.close();
  });

  /** A blind tunnel's echo of `ping` ('' when the tunnel closed: its connect failed), or the refusal's status. */
  async function tunnel(host: string): Promise<{ status: number; echoed: string; response: string }> {
    const opened = await openConnect(sidecar.egressPort!, `${host}:9000`);
    if (opened.status !== 200) return { status: opened.status, echoed: '', response: opened.response };
    const echoed = await echoThrough(opened.socket, 'ping');
    opened.socket.destroy();
    return { status: 200, echoed, response: opened.response };
  }

  it('opens the breaker after minRequests failed connects; then a CONNECT is 503 circuit_open before 200', async () => {
    for (let i = 0; i < 3; i++) expect(await tunnel('dead.internal')).toMatchObject({ status: 200, echoed: '' });
    expect((await upstreamsView(sidecar.admin('/upstreams'))).dead.breaker).toBe('open');
    const refused = await tunnel('dead.internal');
    expect(refused.status).toBe(503);
    expect(refused.response).toMatch(/x-sidecar-error: circuit_open/i);
  });

  it('ejects an endpoint whose connects fail consecutiveErrors times; the tunnels then go to the other one', async () => {
    const results: string[] = [];
    for (let i = 0; i < 4; i++) results.push((await tunnel('pair.internal')).echoed);
    expect(results.filter((echoed) => echoed === '')).toHaveLength(2); // round-robin: every other one went to the dead endpoint
    const view = (await upstreamsView(sidecar.admin('/upstreams'))).pair;
    expect(view.endpoints.map((endpoint) => endpoint.ejected)).toEqual([true, false]);
    for (let i = 0; i < 4; i++) expect((await tunnel('pair.internal')).echoed).toBe('ping');
  });
});
