/**
 * Egress routing by destination, with absolute-form requests (what curl,
 * Python and Go send for http:// URLs): logical names to upstreams,
 * pass-through to the host the app asked for, the allow-list (host and port),
 * and how the request is rebuilt on the way (Host, hop-by-hop, Via).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { proxiedRequest } from './helpers/egress.ts';

interface Echoed {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

describe('egress routing (absolute-form)', () => {
  let payments: TestServer;
  let other: TestServer;
  let sidecar: RunningSidecar;
  let proxy: number;

  beforeAll(async () => {
    payments = await echoServer();
    other = await echoServer();
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  payments: { endpoints: [${payments.url}] }
egress:
  listen: 127.0.0.1:0
  routes:
    - { name: payments, match: { host: payments.internal }, upstream: payments }
    - { name: api-v2, match: { host: "*.svc.internal", path: /v2/ }, upstream: payments, rewrite: { stripPrefix: /v2 } }
    - { name: local-echo, match: { host: 127.0.0.1, ports: [${other.port}] }, headers: { request: { add: { x-egress-route: local-echo } } } }
    - { name: by-name, match: { host: localhost, ports: [${other.port}] } }
`);
    proxy = sidecar.egressPort!;
  });
  afterAll(async () => {
    await sidecar.close();
    await payments.close();
    await other.close();
  });

  async function echoed(target: string, options: Parameters<typeof proxiedRequest>[2] = {}) {
    const response = await proxiedRequest(proxy, target, options);
    expect(response.status, response.body).toBe(200);
    return { response, seen: JSON.parse(response.body) as Echoed };
  }

  it('sends a logical name to its upstream, with the endpoint as Host and the name as X-Forwarded-Host', async () => {
    const { response, seen } = await echoed('http://payments.internal/charge?amount=5', { method: 'POST', body: 'card=1' });
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/charge?amount=5');
    expect(seen.body).toBe('card=1');
    expect(seen.headers.host).toBe(`127.0.0.1:${payments.port}`);
    expect(seen.headers['x-forwarded-host']).toBe('payments.internal');
    expect(response.headers['x-upstream']).toBe('echo');
    expect(response.headers['x-request-id']).toBe(seen.headers['x-request-id']);
  });

  it('matches *.suffix and a path prefix, and applies the route rewrite', async () => {
    const { seen } = await echoed('http://ledger.svc.internal/v2/entries');
    expect(seen.url).toBe('/entries');
    const denied = await proxiedRequest(proxy, 'http://ledger.svc.internal/v1/entries');
    expect(denied.status).toBe(403);
    // `*.svc.internal` does not match the apex.
    expect((await proxiedRequest(proxy, 'http://svc.internal/v2/entries')).status).toBe(403);
  });

  it('passes a route without upstream through to the host and port the app asked for', async () => {
    const { seen } = await echoed(`http://127.0.0.1:${other.port}/direct?q=1`);
    expect(seen.url).toBe('/direct?q=1');
    expect(seen.headers['x-egress-route']).toBe('local-echo');
    const byName = await echoed(`http://localhost:${other.port}/named`);
    expect(byName.seen.headers.host).toBe(`localhost:${other.port}`);
  });

  it('labels pass-through destinations with their route in the metrics, so their number cannot grow the series', async () => {
    await echoed(`http://127.0.0.1:${other.port}/a`);
    await echoed(`http://localhost:${other.port}/b`);
    await echoed('http://payments.internal/c');
    const metrics = await (await fetch(sidecar.admin('/metrics'))).text();
    const series = metrics.split('\n').filter((line) => line.startsWith('sidecar_requests_total{listener="egress"'));
    expect(series.some((line) => line.includes('route="local-echo",upstream="local-echo",'))).toBe(true);
    expect(series.some((line) => line.includes('route="by-name",upstream="by-name",'))).toBe(true);
    expect(series.some((line) => line.includes('route="payments",upstream="payments",'))).toBe(true);
    expect(metrics).not.toContain(`upstream="127.0.0.1:${other.port}"`);
    expect(metrics).not.toContain(`upstream="localhost:${other.port}"`);
  });

  it('answers 403 destination_denied for a host no route allows', async () => {
    const response = await proxiedRequest(proxy, 'http://example.org/');
    expect(response.status).toBe(403);
    expect(response.headers['x-sidecar-error']).toBe('destination_denied');
    expect(JSON.parse(response.body)).toMatchObject({ error: 'destination_denied' });
  });

  it('answers 403 destination_denied for a port the route does not list', async () => {
    const response = await proxiedRequest(proxy, `http://127.0.0.1:${payments.port}/`);
    expect(response.status).toBe(403);
    expect(response.headers['x-sidecar-error']).toBe('destination_denied');
  });

  it('rebuilds Host from the target and ignores the Host the client sent (RFC 9112 3.2.2)', async () => {
    const { seen } = await echoed(`http://127.0.0.1:${other.port}/h`, { headers: { host: 'evil.example' } });
    expect(seen.headers.host).toBe(`127.0.0.1:${other.port}`);
    expect(seen.headers['x-forwarded-host']).toBeUndefined();
  });

  it('strips hop-by-hop headers: Proxy-Connection, Proxy-Authorization, Keep-Alive, TE, and names in Connection', async () => {
    const { seen } = await echoed(`http://127.0.0.1:${other.port}/hop`, {
      headers: {
        'proxy-connection': 'keep-alive',
        'proxy-authorization': 'Basic dXNlcjpwYXNz',
        connection: 'keep-alive, x-hop',
        'keep-alive': 'timeout=5',
        'x-hop': 'must-go',
        te: 'trailers',
        'x-end-to-end': 'stays',
      },
    });
    for (const name of ['proxy-connection', 'proxy-authorization', 'keep-alive', 'x-hop', 'te']) {
      expect(seen.headers[name], name).toBeUndefined();
    }
    expect(seen.headers['x-end-to-end']).toBe('stays');
  });

  it('adds Via (after an incoming one), X-Forwarded-For, x-request-id and traceparent', async () => {
    const { seen } = await echoed('http://payments.internal/via', { headers: { via: '1.1 app-gateway' } });
    expect(seen.headers.via).toMatch(/^1\.1 app-gateway, 1\.1 sidecar-[0-9a-f]+$/);
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });

  it('routes an origin-form request by its Host (an app calling the sidecar directly)', async () => {
    const { seen } = await echoed('/direct-call', { headers: { host: 'payments.internal' } });
    expect(seen.url).toBe('/direct-call');
    expect(seen.headers['x-forwarded-host']).toBe('payments.internal');
  });

  it('answers 400 for a target that is neither absolute-form nor origin-form', async () => {
    for (const target of ['ftp://payments.internal/file', 'http://bad_host!/x', 'http:///nohost', 'http://user:pw@payments.internal/']) {
      const response = await proxiedRequest(proxy, target);
      expect(response.status, target).toBe(400);
      expect(response.headers['x-sidecar-error'], target).toBe('bad_request');
    }
  });

  it('keeps pass-through connections alive: sequential requests share one pooled connection', async () => {
    let connections = 0;
    const count = () => connections++;
    other.server.on('connection', count);
    try {
      for (let i = 0; i < 20; i++) await echoed(`http://127.0.0.1:${other.port}/n${i}`);
    } finally {
      other.server.off('connection', count);
    }
    expect(connections).toBeLessThanOrEqual(1);
  });
});
