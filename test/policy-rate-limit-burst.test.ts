/**
 * Rate limiting (issue 19): a burst beyond `burst` is answered `429
 * rate_limited` by the sidecar, without reaching the upstream, with
 * Retry-After (when the next token comes) and the IETF draft's
 * RateLimit-Policy and RateLimit fields; with `headers: true` every answer
 * of the route carries them; a gRPC request gets RESOURCE_EXHAUSTED; a
 * static route is limited the same way.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';

describe('rateLimit: a burst beyond burst', () => {
  let upstream: TestServer;
  let sidecar: RunningSidecar;
  let hits = 0;

  beforeAll(async () => {
    upstream = await startHttpServer((_req, res) => {
      hits++;
      res.end('ok');
    });
    sidecar = await startSidecar(
      `${TEST_BASE}
upstreams: { app: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: quiet, match: { path: /quiet/ }, upstream: app, rateLimit: { requests: 1, per: 10s, burst: 3 } }
    - { name: told, match: { path: /told/ }, upstream: app, rateLimit: { requests: 1, per: 10s, burst: 3, headers: true } }
    - { name: grpc, match: { path: /grpc/ }, upstream: app, rateLimit: { requests: 1, per: 1m } }
    - { name: files, match: { path: /files/ }, static: { root: ./public }, rateLimit: { requests: 1, per: 1m, burst: 2, headers: true } }
`,
      { 'public/a.txt': 'file a' },
    );
  });
  afterAll(async () => {
    await sidecar?.close();
    await upstream?.close();
  });

  async function get(path: string, headers: Record<string, string> = {}) {
    const response = await request(sidecar.url(path), { headers, method: headers['content-type'] ? 'POST' : 'GET' });
    return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
  }

  it('lets `burst` requests through, then answers 429 itself with Retry-After and the RateLimit fields', async () => {
    hits = 0;
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await get('/quiet/x'));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 429, 429]);
    expect(hits).toBe(3);
    const refused = answers[3];
    expect(refused.headers['x-sidecar-error']).toBe('rate_limited');
    expect(JSON.parse(refused.text)).toMatchObject({ error: 'rate_limited' });
    // One token per 10 s: the next comes within 10 s, and not much sooner (whole seconds, rounded up).
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(9);
    expect(retryAfter).toBeLessThanOrEqual(10);
    expect(refused.headers['ratelimit-policy']).toBe('"quiet";q=1;w=10');
    const fields = /^"quiet";r=(\d+);t=(\d+)$/.exec(String(refused.headers.ratelimit));
    expect(fields).not.toBeNull();
    expect(Number(fields![1])).toBe(0);
    // The bucket is full again after 3 tokens at 10 s each.
    expect(Number(fields![2])).toBeGreaterThanOrEqual(29);
    expect(Number(fields![2])).toBeLessThanOrEqual(30);
    // Without `headers: true`, the upstream's answers carry no RateLimit fields.
    expect(answers[0].headers.ratelimit).toBeUndefined();
  });

  it('with headers: true, puts the RateLimit fields on every answer, counting down', async () => {
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await get('/told/x'));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 429]);
    expect(answers.map((answer) => answer.headers['ratelimit-policy'])).toEqual(Array(4).fill('"told";q=1;w=10'));
    expect(answers.map((answer) => /;r=(\d+);/.exec(String(answer.headers.ratelimit))?.[1])).toEqual(['2', '1', '0', '0']);
  });

  it('answers a gRPC request with grpc-status 8 RESOURCE_EXHAUSTED, trailers-only, HTTP 200', async () => {
    const grpc = { 'content-type': 'application/grpc', te: 'trailers' };
    expect((await get('/grpc/svc/Method', grpc)).status).toBe(200);
    const refused = await get('/grpc/svc/Method', grpc);
    expect(refused.status).toBe(200);
    expect(refused.headers['grpc-status']).toBe('8');
    expect(refused.headers['x-sidecar-error']).toBe('rate_limited');
    expect(refused.headers['content-type']).toBe('application/grpc');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.text).toBe('');
  });

  it('answers a gRPC-Web request in its own content type, which gRPC-Web clients check', async () => {
    const web = { 'content-type': 'application/grpc-web+proto', 'x-grpc-web': '1' };
    await get('/grpc/svc/Other', web);
    const refused = await get('/grpc/svc/Other', web);
    expect(refused.status).toBe(200);
    expect(refused.headers['grpc-status']).toBe('8');
    expect(refused.headers['content-type']).toBe('application/grpc-web+proto');
    // Anything else the client wrote is not echoed back.
    const odd = await get('/grpc/svc/Other', { ...web, 'content-type': 'application/grpc-web+proto<script>x' });
    expect(odd.headers['content-type']).toBe('application/grpc-web');
  });

  it('limits a static route the same way, its files carrying the fields', async () => {
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await get('/files/a.txt'));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 429]);
    expect(answers[0].text).toBe('file a');
    expect(answers[0].headers['ratelimit-policy']).toBe('"files";q=1;w=60');
    expect(answers[1].headers.ratelimit).toMatch(/^"files";r=0;t=\d+$/);
    expect(answers[2].headers['x-sidecar-error']).toBe('rate_limited');
  });
});
