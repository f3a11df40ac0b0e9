/**
 * Admin `GET /status.json`: the numbers of known traffic (N requests sent, N
 * counted, per listener and per route, by status class), a rate above zero
 * while traffic runs, endpoint failures with the last error, and the
 * sidecar's own error answers in the recent errors with their request ids.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { closedPort, echoServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

interface Status {
  listeners: Array<{ name: string; total: Record<string, number>; rate: Record<string, number | null>; history: { at: number[] } }>;
  routes: Array<{ listener: string; name: string; target: string; total: Record<string, number> }>;
  upstreams: Array<{ name: string; breaker: string; endpoints: Array<{ state: string; failures: number; lastError: string | null; lastErrorAt: string | null }> }>;
  recentErrors: Array<{ code: string; status: number; route: string; upstream: string; reqId: string; path: string }>;
  config: { hash: string };
  workers: number;
  version: string;
}

describe('GET /status.json', () => {
  let echo: TestServer;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    echo = await echoServer();
    const dead = await closedPort();
    sidecar = await startSidecar(
      `${TEST_BASE}
upstreams:
  ok: { endpoints: [${echo.url}] }
  dead: { endpoints: [http://127.0.0.1:${dead}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: good, match: { path: /ok }, upstream: ok }
    - { name: broken, match: { path: /broken }, upstream: dead }
`,
      {},
      { statusIntervalMs: 100 },
    );
  });
  afterAll(async () => {
    await sidecar?.close();
    await echo?.close();
  });

  const status = async (): Promise<Status> => {
    const response = await request(sidecar.admin('/status.json'));
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toContain('application/json');
    return (await response.body.json()) as Status;
  };
  /**
   * The status once `ready` holds (bounded): a request counts when the server
   * side of its response closes, which may come a moment after the client
   * has read the whole answer.
   */
  const statusWhen = async (ready: (body: Status) => boolean): Promise<Status> => {
    let body = await status();
    for (let round = 0; round < 100 && !ready(body); round++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      body = await status();
    }
    return body;
  };
  const send = async (path: string, reqId?: string) => {
    const response = await request(sidecar.url(path), { headers: reqId ? { 'x-request-id': reqId } : {} });
    await response.body.dump();
    return response.statusCode;
  };

  it('counts N requests sent as N, per listener and per route, by status class', async () => {
    for (let i = 0; i < 7; i++) expect(await send(`/ok/${i}`)).toBe(200);
    for (let i = 0; i < 3; i++) expect(await send('/broken')).toBe(502);
    expect(await send('/nowhere')).toBe(404);
    const body = await statusWhen((each) => each.listeners[0]?.total.requests >= 11);
    const ingress = body.listeners.find((listener) => listener.name === 'ingress')!;
    expect(ingress.total).toEqual({ requests: 11, '2xx': 7, '4xx': 1, '5xx': 3 });
    const route = (name: string) => body.routes.find((each) => each.name === name);
    expect(route('good')).toMatchObject({ listener: 'ingress', target: 'ok', total: { requests: 7, '2xx': 7, '4xx': 0, '5xx': 0 } });
    expect(route('broken')).toMatchObject({ target: 'dead', total: { requests: 3, '5xx': 3 } });
    expect(route('')).toMatchObject({ total: { requests: 1, '4xx': 1 } }); // no route matched
    expect(body.workers).toBe(1);
    expect((body.listeners[0] as unknown as { listen: string }).listen).toBe(`127.0.0.1:${sidecar.sidecar.ingressPort}`); // port 0 shown as bound
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('shows endpoint failures with the last error, and the error answers with their request ids', async () => {
    const reqId = `status-test-${Date.now()}`;
    expect(await send('/broken/x?secret=1', reqId)).toBe(502);
    const body = await statusWhen((each) => each.recentErrors[0]?.reqId === reqId);
    const dead = body.upstreams.find((upstream) => upstream.name === 'dead')!;
    expect(dead.breaker).toBe('none');
    expect(dead.endpoints[0]).toMatchObject({ state: 'healthy', failures: 4, lastError: 'upstream_connect_failed' });
    expect(Date.parse(dead.endpoints[0].lastErrorAt!)).toBeGreaterThan(0);
    expect(body.recentErrors[0]).toMatchObject({ code: 'upstream_connect_failed', status: 502, route: 'broken', upstream: 'dead', reqId, path: '/broken/x' });
    expect(body.recentErrors.filter((entry) => entry.code === 'upstream_connect_failed')).toHaveLength(4);
    expect(body.recentErrors.some((entry) => entry.code === 'no_route')).toBe(true);
  });

  it('keeps the last 50 errors, newest first', async () => {
    for (let i = 0; i < 60; i++) await send(`/nowhere/${i}`, `many-${i}`);
    const errors = (await statusWhen((each) => each.recentErrors[0]?.reqId === 'many-59')).recentErrors;
    expect(errors).toHaveLength(50);
    expect(errors[0].reqId).toBe('many-59');
    expect(errors[49].reqId).toBe('many-10');
  });

  it('gives a request rate above zero while traffic runs, and keeps history', async () => {
    let rate = 0;
    let history = 0;
    const until = Date.now() + 5_000;
    for (let round = 0; round < 200 && Date.now() < until && !(rate > 0 && history >= 3); round++) {
      for (let i = 0; i < 5; i++) await send('/ok/rate');
      const ingress = (await status()).listeners[0];
      rate = Number(ingress.rate.requests);
      history = ingress.history.at.length;
    }
    expect(rate).toBeGreaterThan(0);
    expect(history).toBeGreaterThanOrEqual(3);
  });
});
