import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

/** Each upstream answers with its own name and the path it received. */
function named(name: string): Promise<TestServer> {
  return startHttpServer((req, res) => {
    req.resume();
    req.on('end', () => res.end(JSON.stringify({ name, url: req.url })));
  });
}

describe('ingress routing', () => {
  const upstreams: Record<string, TestServer> = {};
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    for (const name of ['hosted', 'wild', 'regex', 'methods', 'hdr', 'hdrre', 'api', 'first', 'fallback']) upstreams[name] = await named(name);
    const list = (name: string) => `  ${name}: { endpoints: [${upstreams[name].url}] }`;
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
${Object.keys(upstreams).map(list).join('\n')}
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: by-host, match: { host: app.example.test }, upstream: hosted }
    - { name: by-wildcard, match: { host: "*.wild.test" }, upstream: wild }
    - { name: by-regex, match: { pathRegex: "^/items/[0-9]+$" }, upstream: regex }
    - { name: by-method, match: { path: /m/, methods: [PUT, DELETE] }, upstream: methods }
    - { name: by-header, match: { path: /h/, headers: { x-tenant: acme } }, upstream: hdr }
    - { name: by-header-regex, match: { path: /h/, headers: { x-tenant: { regex: "^beta-[a-z]+$" } } }, upstream: hdrre }
    - { name: api, match: { path: /api/v1/ }, upstream: api, rewrite: { stripPrefix: /api/v1 } }
    - { name: first, match: { path: /order/ }, upstream: first }
    - { name: second, match: { path: /order/deep/ }, upstream: api }
    - { name: fallback, match: { path: /other }, upstream: fallback }
`);
  });
  afterAll(async () => {
    await sidecar.close();
    await Promise.all(Object.values(upstreams).map((server) => server.close()));
  });

  async function call(path: string, options: { method?: string; headers?: Record<string, string> } = {}) {
    const response = await request(sidecar.url(path), { method: (options.method ?? 'GET') as 'GET', headers: options.headers });
    const text = await response.body.text();
    return { status: response.statusCode, headers: response.headers, json: response.statusCode === 200 ? JSON.parse(text) : JSON.parse(text) };
  }

  it('matches an exact host, case-insensitively and without the port', async () => {
    expect((await call('/x', { headers: { host: 'APP.example.test:8080' } })).json.name).toBe('hosted');
  });

  it('matches *.suffix hosts but not the apex', async () => {
    expect((await call('/x', { headers: { host: 'a.wild.test' } })).json.name).toBe('wild');
    expect((await call('/x', { headers: { host: 'wild.test' } })).status).toBe(404);
  });

  it('matches pathRegex', async () => {
    expect((await call('/items/42')).json.name).toBe('regex');
    expect((await call('/items/abc')).status).toBe(404);
  });

  it('matches methods', async () => {
    expect((await call('/m/1', { method: 'PUT' })).json.name).toBe('methods');
    expect((await call('/m/1', { method: 'GET' })).status).toBe(404);
  });

  it('matches headers by exact value and by regex', async () => {
    expect((await call('/h/1', { headers: { 'x-tenant': 'acme' } })).json.name).toBe('hdr');
    expect((await call('/h/1', { headers: { 'x-tenant': 'beta-corp' } })).json.name).toBe('hdrre');
    expect((await call('/h/1', { headers: { 'x-tenant': 'other' } })).status).toBe(404);
  });

  it('strips a prefix and keeps the query string', async () => {
    expect((await call('/api/v1/users?id=7')).json).toEqual({ name: 'api', url: '/users?id=7' });
    expect((await call('/api/v1/')).json.url).toBe('/');
  });

  it('takes the first matching route, in order', async () => {
    expect((await call('/order/deep/x')).json.name).toBe('first');
  });

  it('answers 404 no_route when nothing matches', async () => {
    const response = await call('/nothing/here');
    expect(response.status).toBe(404);
    expect(response.headers['x-sidecar-error']).toBe('no_route');
    expect(response.json).toEqual({ error: 'no_route', message: expect.any(String) });
  });
});
