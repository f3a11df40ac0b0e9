/**
 * The sidecar's own answers in the access log: their JSON bodies count in
 * `bytesOut` (what went to the client, as for any body), and a 5xx line is
 * logged at `warn`, whoever answered, so it stands out from the `info` of
 * the rest. The sidecar runs in its own process.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessLineOf, openConnect, proxiedRequest } from './helpers/egress.ts';
import { LOGGED_BASE, spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';
import { closedPort, startHttpServer, type TestServer } from './helpers/servers.ts';

let upstream: TestServer;
let sidecar: SidecarProcess;

beforeAll(async () => {
  upstream = await startHttpServer((req, res) => {
    req.resume();
    if (req.url === '/app/busy') res.writeHead(503, { 'content-type': 'text/plain' }).end('busy');
    else res.end('hello');
  });
  const config = writeConfig(`${LOGGED_BASE}upstreams:
  app: { endpoints: [${upstream.url}] }
  dead: { endpoints: [http://127.0.0.1:${await closedPort()}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: files, match: { path: /files/ }, static: { root: ./public } }
    - { name: dead, match: { path: /dead }, upstream: dead }
    - { name: app, match: { path: /app }, upstream: app }
egress:
  listen: 127.0.0.1:0
  routes:
    - { name: payments, match: { host: payments.internal }, upstream: app }
`);
  mkdirSync(join(dirname(config), 'public'));
  writeFileSync(join(dirname(config), 'public', 'a.txt'), 'a file');
  sidecar = await spawnSidecar(['--config', config]);
});

afterAll(async () => {
  await sidecar?.stop();
  await upstream?.close();
});

const lineOf = (reqId: string) => accessLineOf(sidecar.lines, reqId);

async function ingress(path: string, reqId: string, method = 'GET'): Promise<{ status: number; body: string }> {
  const res = await request(`http://127.0.0.1:${sidecar.ingressPort}${path}`, { method: method as 'GET', headers: { 'x-request-id': reqId } });
  return { status: res.statusCode, body: await res.body.text() };
}

describe('the sidecar\'s own answers in the access log', () => {
  it('bytesOut counts the JSON body of an error answer (404 no_route), and nothing for HEAD', async () => {
    const answer = await ingress('/nowhere', 'own-404');
    expect(answer.status).toBe(404);
    expect(answer.body).toContain('"error":"no_route"');
    expect(await lineOf('own-404')).toMatchObject({ status: 404, error: 'no_route', bytesOut: Buffer.byteLength(answer.body), level: 'info' });
    expect((await ingress('/nowhere', 'own-404-head', 'HEAD')).status).toBe(404);
    expect(await lineOf('own-404-head')).toMatchObject({ status: 404, bytesOut: 0 });
  });

  it('a static route\'s 404 body counts too', async () => {
    const answer = await ingress('/files/missing.txt', 'static-404');
    expect(answer.status).toBe(404);
    expect(await lineOf('static-404')).toMatchObject({ status: 404, bytesOut: Buffer.byteLength(answer.body) });
  });

  it('the sidecar\'s own 5xx (502 upstream_connect_failed) is logged at warn, with its body counted', async () => {
    const answer = await ingress('/dead', 'own-502');
    expect(answer.status).toBe(502);
    expect(await lineOf('own-502')).toMatchObject({ level: 'warn', status: 502, error: 'upstream_connect_failed', bytesOut: Buffer.byteLength(answer.body) });
  });

  it('an upstream\'s 5xx is logged at warn too; a 2xx at info', async () => {
    expect((await ingress('/app/busy', 'up-503')).status).toBe(503);
    const busy = await lineOf('up-503');
    expect(busy).toMatchObject({ level: 'warn', status: 503, bytesOut: 4 });
    expect(busy.error).toBeUndefined();
    expect((await ingress('/app', 'up-200')).status).toBe(200);
    expect(await lineOf('up-200')).toMatchObject({ level: 'info', status: 200 });
  });

  it('egress: a refused destination (403) and a refused CONNECT count their bodies', async () => {
    const denied = await proxiedRequest(sidecar.egressPort!, 'http://elsewhere.test/x', { headers: { 'x-request-id': 'egress-403' } });
    expect(denied.status).toBe(403);
    expect(await lineOf('egress-403')).toMatchObject({ listener: 'egress', status: 403, bytesOut: Buffer.byteLength(denied.body) });
    const tunnel = await openConnect(sidecar.egressPort!, 'elsewhere.test:443', { 'x-request-id': 'connect-403' });
    expect(tunnel.status).toBe(403);
    const body = tunnel.response.slice(tunnel.response.indexOf('\r\n\r\n') + 4);
    expect(body).toContain('destination_denied');
    expect(await lineOf('connect-403')).toMatchObject({ method: 'CONNECT', status: 403, bytesOut: Buffer.byteLength(body) });
  });
});
