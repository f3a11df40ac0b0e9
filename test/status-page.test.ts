/**
 * Admin `GET /`: a self-contained HTML status page, readable with JavaScript
 * off (server-rendered tables), under a strict Content-Security-Policy (no
 * inline script or style, nothing from another origin); its script and
 * stylesheet are admin paths of their own. With `admin.token` the page and
 * /status.json need the token (as a bearer token, or as a Basic password, so
 * a browser can ask for it); the assets hold no data and stay open. Nothing
 * the config redaction hides is shown.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { closedPort, echoServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, type RunningSidecar } from './helpers/sidecar.ts';

const TOKEN = randomBytes(18).toString('base64url');
const ROUTE_SECRET = `route-${randomBytes(6).toString('hex')}`;
const HOST_SECRET = '127.0.0.1';

describe('the status page', () => {
  let echo: TestServer;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    echo = await echoServer();
    const dead = await closedPort();
    process.env.SIDECAR_TEST_STATUS_TOKEN = TOKEN;
    process.env.SIDECAR_TEST_STATUS_ROUTE = ROUTE_SECRET;
    process.env.SIDECAR_TEST_STATUS_HOST = HOST_SECRET;
    sidecar = await startSidecar(`
admin: { listen: 127.0.0.1:0, token: "\${SIDECAR_TEST_STATUS_TOKEN}" }
log: { level: silent, access: false }
upstreams:
  ok: { endpoints: [${echo.url}] }
  hidden: { endpoints: ["http://\${SIDECAR_TEST_STATUS_HOST}:${dead}"] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: "\${SIDECAR_TEST_STATUS_ROUTE}", match: { path: /secret }, upstream: hidden }
    - { name: app, match: { path: / }, upstream: ok }
`);
  });
  afterAll(async () => {
    await sidecar?.close();
    await echo?.close();
    delete process.env.SIDECAR_TEST_STATUS_TOKEN;
    delete process.env.SIDECAR_TEST_STATUS_ROUTE;
    delete process.env.SIDECAR_TEST_STATUS_HOST;
  });

  const get = async (path: string, authorization?: string) => {
    const response = await request(sidecar.admin(path), { headers: authorization ? { authorization } : {} });
    return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
  };
  const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  const bearer = `Bearer ${TOKEN}`;

  it('needs admin.token for the page and its data, as a bearer token or a Basic password; a browser is asked for Basic', async () => {
    for (const path of ['/', '/status.json']) {
      const refused = await get(path);
      expect(refused.status, path).toBe(401);
      expect(refused.headers['www-authenticate']).toBe('Basic realm="sidecar admin", charset="UTF-8"');
      expect((await get(path, basic('admin', 'wrong'))).status, path).toBe(401);
      expect((await get(path, 'Bearer wrong')).status, path).toBe(401);
      expect((await get(path, basic('admin', TOKEN))).status, path).toBe(200);
      expect((await get(path, basic('', TOKEN))).status, path).toBe(200);
      expect((await get(path, bearer)).status, path).toBe(200);
    }
    // Basic stays a status page thing: the config's own reads keep to bearer tokens.
    expect((await get('/config', basic('admin', TOKEN))).status).toBe(401);
  });

  it('serves its script and stylesheet without the token: they hold no data', async () => {
    const script = await get('/status.js');
    expect(script.status).toBe(200);
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(script.text).toContain('setTimeout(refresh');
    const style = await get('/status.css');
    expect(style.status).toBe(200);
    expect(style.headers['content-type']).toBe('text/css; charset=utf-8');
  });

  it('is one HTML page under a strict CSP: no inline script or style, nothing from elsewhere', async () => {
    await (await request(sidecar.url('/hello'))).body.dump();
    const page = await get('/', bearer);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['cache-control']).toBe('no-store');
    const scripts = [...page.text.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts).toHaveLength(1);
    expect(scripts[0][1]).toContain('src="status.js"'); // relative: the page works under a path prefix too
    expect(scripts[0][2]).toBe(''); // no inline code
    expect(page.text).not.toMatch(/<style\b/);
    expect(page.text).not.toMatch(/\sstyle=/);
    expect(page.text).not.toMatch(/\son[a-z]+=/); // no inline event handlers
    expect(page.text).not.toMatch(/(?:src|href)="(?:https?:)?\/\//); // nothing from another origin
  });

  it('reads without JavaScript: server-rendered tables of listeners, routes, upstreams and errors', async () => {
    const answer = await request(sidecar.url('/secret/x'), { headers: { 'x-request-id': 'page-error-1' } });
    await answer.body.dump();
    expect(answer.statusCode).toBe(502);
    // Recorded once the server side of the response closed, a moment after the client read it: wait (bounded).
    let page = (await get('/', bearer)).text;
    for (let round = 0; round < 100 && !page.includes('page-error-1'); round++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      page = (await get('/', bearer)).text;
    }
    for (const text of ['Listeners', 'Routes', 'Upstreams', 'Recent errors', 'ingress', 'app', 'upstream_connect_failed', 'page-error-1', 'breaker', 'healthy']) {
      expect(page, text).toContain(text);
    }
    expect(page).toMatch(/<svg [^>]*role="img"/); // the charts are inline SVG
  });

  it('shows nothing the redaction hides: no token, no value from ${VAR}', async () => {
    const page = (await get('/', bearer)).text;
    const json = (await get('/status.json', bearer)).text;
    for (const text of [page, json]) {
      expect(text).not.toContain(TOKEN);
      expect(text).not.toContain(ROUTE_SECRET);
      expect(text).toContain('[redacted]');
    }
    const status = JSON.parse(json) as { upstreams: Array<{ name: string; endpoints: Array<{ url: string }> }>; recentErrors: Array<{ route: string; reqId: string }> };
    expect(status.upstreams.find((upstream) => upstream.name === 'hidden')!.endpoints[0].url).toMatch(/^http:\/\/\[redacted\]:\d+$/);
    expect(status.recentErrors.find((entry) => entry.reqId === 'page-error-1')!.route).toBe('[redacted]');
  });
});
