import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpRequest } from 'node:http';
import { request } from 'undici';
import { closedPort, echoServer, startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

describe('ingress headers', () => {
  let echo: TestServer;
  let hopUpstream: TestServer;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    echo = await echoServer();
    // Answers with hop-by-hop headers that must not reach the client.
    hopUpstream = await startHttpServer((req, res) => {
      req.resume();
      res.writeHead(200, {
        connection: 'keep-alive, x-hop-response',
        'keep-alive': 'timeout=5',
        'x-hop-response': 'secret',
        'proxy-authenticate': 'Basic',
        server: 'upstream/1.0',
        'x-kept': 'yes',
        'set-cookie': ['a=1', 'b=2'],
        'x-request-id': 'upstream-own',
      });
      res.end('ok');
    });
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  echo: { endpoints: [${echo.url}] }
  hop: { endpoints: [${hopUpstream.url}] }
  dead: { endpoints: [http://127.0.0.1:${await closedPort()}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: dead, match: { path: /dead }, upstream: dead, retry: { attempts: 2, backoff: { base: 1ms, max: 2ms } } }
    - { name: limited, match: { path: /limited }, upstream: echo, maxBody: 10 }
    - name: rules
      match: { path: /rules/ }
      upstream: echo
      headers:
        request: { add: { x-from: sidecar, x-replaced: new }, remove: [x-internal] }
        response: { add: { x-served-by: sidecar }, remove: [x-upstream] }
    - { name: hop, match: { path: /hop }, upstream: hop, headers: { response: { remove: [server] } } }
    - { name: echo, match: { path: / }, upstream: echo }
`);
  });
  afterAll(async () => {
    await sidecar.close();
    await echo.close();
    await hopUpstream.close();
  });

  async function echoed(path: string, headers: Record<string, string> = {}) {
    const response = await request(sidecar.url(path), { headers });
    return { response, seen: (await response.body.json()) as { headers: Record<string, string>; url: string } };
  }

  it('sets X-Forwarded-For/Proto/Host and Via, and keeps the Host', async () => {
    const { seen } = await echoed('/x', { host: 'shop.example.test' });
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-host']).toBe('shop.example.test');
    expect(seen.headers.host).toBe('shop.example.test');
    expect(seen.headers.via).toMatch(/^1\.1 sidecar-[0-9a-f]+$/);
  });

  it('appends to an incoming Via; X-Forwarded-For starts afresh from a client not in trustedProxies', async () => {
    const { seen } = await echoed('/x', { 'x-forwarded-for': '203.0.113.9', via: '1.1 edge' });
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1'); // appended to only for a trusted proxy: hardening-forwarded.test.ts
    expect(seen.headers.via).toMatch(/^1\.1 edge, 1\.1 sidecar-/);
  });

  it('passes x-request-id and traceparent on, or creates them', async () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const given = await echoed('/x', { 'x-request-id': 'req-123', traceparent });
    expect(given.seen.headers['x-request-id']).toBe('req-123');
    expect(given.seen.headers.traceparent).toBe(traceparent);
    expect(given.response.headers['x-request-id']).toBe('req-123');

    const created = await echoed('/x');
    expect(created.seen.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.seen.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(created.response.headers['x-request-id']).toBe(created.seen.headers['x-request-id']);
  });

  it("the sidecar's own answers carry the request id too", async () => {
    // Before the route (URI too long), after the tries (connect failure, retried), and before any try (body over maxBody).
    const tooLong = await request(sidecar.url(`/${'a'.repeat(9000)}`), { headers: { 'x-request-id': 'long-one' } });
    await tooLong.body.text();
    expect([tooLong.statusCode, tooLong.headers['x-request-id']]).toEqual([414, 'long-one']);

    const dead = await request(sidecar.url('/dead'));
    await dead.body.text();
    expect(dead.statusCode).toBe(502);
    expect(dead.headers['x-sidecar-error']).toBe('upstream_connect_failed');
    expect(dead.headers['x-sidecar-attempts']).toBe('2');
    expect(dead.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);

    const big = await request(sidecar.url('/limited'), { method: 'POST', body: 'x'.repeat(100), headers: { 'x-request-id': 'too-big' } });
    await big.body.text();
    expect([big.statusCode, big.headers['x-request-id']]).toEqual([413, 'too-big']);
  });

  it('keeps an x-request-id the upstream put on its answer', async () => {
    const response = await request(sidecar.url('/hop'), { headers: { 'x-request-id': 'from-client' } });
    await response.body.text();
    expect(response.headers['x-request-id']).toBe('upstream-own');
  });

  it('strips hop-by-hop request headers, including those named in Connection', async () => {
    const seen = await new Promise<Record<string, string>>((resolve, reject) => {
      const req = httpRequest(sidecar.url('/x'), {
        headers: {
          connection: 'keep-alive, x-hop-request',
          'keep-alive': 'timeout=5',
          'x-hop-request': 'must-go',
          te: 'trailers',
          'proxy-authorization': 'Basic Zm9vOmJhcg==',
          'x-end-to-end': 'stays',
        },
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString()).headers));
      });
      req.on('error', reject);
      req.end();
    });
    expect(seen['x-hop-request']).toBeUndefined();
    expect(seen['keep-alive']).toBeUndefined();
    expect(seen.te).toBeUndefined();
    expect(seen['proxy-authorization']).toBeUndefined();
    expect(seen['x-end-to-end']).toBe('stays');
  });

  it('strips hop-by-hop response headers and applies response rules', async () => {
    const response = await request(sidecar.url('/hop'));
    await response.body.text();
    expect(response.headers['x-hop-response']).toBeUndefined();
    expect(response.headers['proxy-authenticate']).toBeUndefined();
    expect(response.headers.server).toBeUndefined();
    expect(response.headers['x-kept']).toBe('yes');
    expect(response.headers['set-cookie']).toEqual(['a=1', 'b=2']);
  });

  it('applies request and response header rules', async () => {
    const { response, seen } = await echoed('/rules/a', { 'x-internal': 'secret', 'x-replaced': 'old' });
    expect(seen.headers['x-from']).toBe('sidecar');
    expect(seen.headers['x-replaced']).toBe('new');
    expect(seen.headers['x-internal']).toBeUndefined();
    expect(response.headers['x-served-by']).toBe('sidecar');
    expect(response.headers['x-upstream']).toBeUndefined();
  });
});

describe('trace context across retries', () => {
  it('a created traceparent is the same on every try of a request', async () => {
    const seen: string[] = [];
    const flaky = await startHttpServer((req, res) => {
      seen.push(String(req.headers.traceparent));
      res.writeHead(seen.length === 1 ? 503 : 200).end();
    });
    const sidecar = await startSidecar(`${TEST_BASE}
upstreams: { flaky: { endpoints: [${flaky.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes: [{ match: { path: / }, upstream: flaky, retry: { attempts: 2, backoff: { base: 1ms, max: 2ms } } }]
`);
    try {
      const response = await request(sidecar.url('/'));
      await response.body.text();
      expect(response.headers['x-sidecar-attempts']).toBe('2');
      expect(seen).toHaveLength(2);
      expect(seen[0]).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      expect(seen[1]).toBe(seen[0]);
    } finally {
      await sidecar.close();
      await flaky.close();
    }
  });
});
