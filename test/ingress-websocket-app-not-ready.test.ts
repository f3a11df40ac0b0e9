/**
 * While the supervised app is not ready, ingress answers 503 app_not_ready
 * with Retry-After (SPEC, "Answers the sidecar gives itself"). A WebSocket
 * upgrade is a request too: before the fix it skipped the check and was
 * relayed to an app the sidecar itself reported as not ready.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { attachEchoServer, upgrade } from './helpers/websocket.ts';

describe('WebSocket upgrades while the app is not ready', () => {
  let upstream: TestServer;
  let sidecar: RunningSidecar;
  let ready = false;

  beforeAll(async () => {
    upstream = await startHttpServer((_req, res) => res.end('plain'));
    attachEchoServer(upstream.server);
    sidecar = await startSidecar(
      `${TEST_BASE}
upstreams: { app: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: / }, upstream: app, websocket: true }
`,
      {},
      { appReady: () => ready },
    );
  });
  afterAll(async () => {
    await sidecar.close();
    await upstream.close();
  });

  it('answers 503 app_not_ready, like a plain request, and relays once the app is ready', async () => {
    const port = sidecar.sidecar.ingressPort!;
    const plain = await request(`http://127.0.0.1:${port}/`);
    await plain.body.text();
    expect(plain.statusCode).toBe(503);
    expect(plain.headers['x-sidecar-error']).toBe('app_not_ready');

    const refused = await upgrade(`ws://127.0.0.1:${port}/chat`);
    expect(refused).toMatchObject({ kind: 'answered', status: 503, error: 'app_not_ready' });

    ready = true;
    const open = await upgrade(`ws://127.0.0.1:${port}/chat`);
    expect(open.kind).toBe('open');
    if (open.kind === 'open') open.ws.close();
  });
});
