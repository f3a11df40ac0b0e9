/**
 * Hostile paths on ingress (issue 20): the route is chosen on the path the
 * upstream will see. Requests go out as raw bytes, so that no client
 * normalises them first; the sidecar runs as its own process so that its
 * access log can be read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { parseRawResponse, rawExchange, type RawResponse } from './helpers/raw.ts';
import { spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';

/** Every request target an upstream got, as `name url`. */
const forwarded: string[] = [];

/** An upstream that answers with its name and the request target it got. */
function namedEcho(name: string): Promise<TestServer> {
  return startHttpServer((req, res) => {
    forwarded.push(`${name} ${req.url}`);
    req.resume();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ name, url: req.url }));
  });
}

describe('ingress: paths are normalised before routing', () => {
  let api: TestServer;
  let admin: TestServer;
  let app: TestServer;
  let sidecar: SidecarProcess;

  beforeAll(async () => {
    [api, admin, app] = await Promise.all([namedEcho('api'), namedEcho('admin'), namedEcho('app')]);
    const file = writeConfig(`
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: true }
upstreams:
  api: { endpoints: [${api.url}] }
  admin: { endpoints: [${admin.url}] }
  app: { endpoints: [${app.url}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: static, match: { path: /static/ }, static: { root: ./public } }
    - { name: api, match: { path: /api/ }, upstream: api, rewrite: { stripPrefix: /api } }
    - { name: admin, match: { path: /admin/ }, upstream: admin }
    - { name: app, match: { path: / }, upstream: app }
`);
    mkdirSync(join(dirname(file), 'public', 'inner'), { recursive: true });
    writeFileSync(join(dirname(file), 'public', 'file.txt'), 'static file');
    writeFileSync(join(dirname(file), 'secret.txt'), 'TOP-SECRET');
    sidecar = await spawnSidecar(['--config', file]);
  });
  afterAll(async () => {
    await sidecar?.stop();
    await Promise.all([api?.close(), admin?.close(), app?.close()]);
  });

  async function get(target: string, reqId = 'none'): Promise<RawResponse> {
    return parseRawResponse(await rawExchange(sidecar.ingressPort!, `GET ${target} HTTP/1.1\r\nHost: paths.test\r\nx-request-id: ${reqId}\r\nConnection: close\r\n\r\n`));
  }

  async function upstreamOf(target: string): Promise<{ name: string; url: string }> {
    const answer = await get(target);
    expect(answer.status, `${target}: ${answer.head}`).toBe(200);
    return JSON.parse(answer.body) as { name: string; url: string };
  }

  it('routes /api/%2e%2e/admin/x as /admin/x, never to the /api/ route', async () => {
    for (const target of ['/api/%2e%2e/admin/x', '/api/%2E%2e/admin/x', '/api/.%2e/admin/x', '/api/../admin/x', '/api/x/../../admin/x']) {
      expect(await upstreamOf(target), target).toEqual({ name: 'admin', url: '/admin/x' });
    }
  });

  it('merges slashes before removing dot segments, as NGINX does', async () => {
    expect(await upstreamOf('/api//..//admin/x')).toEqual({ name: 'admin', url: '/admin/x' });
    expect(await upstreamOf('//admin///x')).toEqual({ name: 'admin', url: '/admin/x' });
  });

  it('forwards the normalised path (after stripPrefix) with the query as it came', async () => {
    expect(await upstreamOf('/api//x/./y/../z?q=/../a&b=%2e')).toEqual({ name: 'api', url: '/x/z?q=/../a&b=%2e' });
    // Unreserved escapes decoded, the others upper-cased.
    expect(await upstreamOf('/api/%7euser/%41%62c%3a')).toEqual({ name: 'api', url: '/~user/Abc%3A' });
  });

  it('leaves %2F and %5C encoded: they separate nothing, and a raw backslash goes on as %5C', async () => {
    expect(await upstreamOf('/api/..%2f..%2fadmin')).toEqual({ name: 'api', url: '/..%2F..%2Fadmin' });
    expect(await upstreamOf('/api/a%5cb')).toEqual({ name: 'api', url: '/a%5Cb' });
    expect(await upstreamOf('/api/..\\..\\admin')).toEqual({ name: 'api', url: '/..%5C..%5Cadmin' });
  });

  it('answers 400 bad_request to a path above the root and to broken escapes', async () => {
    const before = forwarded.length;
    for (const target of ['/../admin/x', '/api/../../admin/x', '/%2e%2e/admin/x', '/api/%2e%2e/%2E%2E/x', '/%zz', '/api/%4']) {
      const answer = await get(target);
      expect(answer.status, target).toBe(400);
      expect(answer.headers['x-sidecar-error'], target).toBe('bad_request');
    }
    expect(forwarded.slice(before)).toEqual([]); // none of them reached an upstream
  });

  it('static routes see the normalised path and still guard their root', async () => {
    const inside = await get('/static/inner/../file.txt');
    expect([inside.status, inside.body]).toEqual([200, 'static file']);
    // Climbs out of /static/: no longer a static request at all, so the file outside the root is never read.
    const out = await get('/static/%2e%2e/secret.txt');
    expect(out.body).not.toContain('TOP-SECRET');
    expect(JSON.parse(out.body)).toEqual({ name: 'app', url: '/secret.txt' });
    const encoded = await get('/static/..%2fsecret.txt');
    expect(encoded.status).toBe(404);
    expect(encoded.body).not.toContain('TOP-SECRET');
  });

  it("logs the normalised path (without the query) as the access line's path", async () => {
    await get('/api/%2e%2e/admin/./logged?x=1', 'normalised-path');
    let line: Record<string, unknown> | undefined;
    for (let i = 0; i < 100 && !line; i++) {
      line = sidecar.lines.find((entry) => entry.log === 'access' && entry.reqId === 'normalised-path');
      if (!line) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(line).toMatchObject({ route: 'admin', path: '/admin/logged', status: 200 });
  });
});
