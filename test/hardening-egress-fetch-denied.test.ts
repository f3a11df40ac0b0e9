/**
 * Issue 23: Node's fetch with NODE_USE_ENV_PROXY=1 tunnels even http:// URLs
 * through `CONNECT host:80`, and shows nothing of a refused CONNECT but
 * `fetch failed`. A CONNECT to port 80 that no route allows is therefore
 * accepted, and each HTTP request inside it gets the routed answer: a real
 * `403 destination_denied` the app can read and log. Bytes that are not HTTP
 * close such a tunnel; a CONNECT to any other port is still refused at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { NODE, clientEnv, closedWithin, openConnect, readAll, run } from './helpers/egress.ts';

describe('a denied http:// destination through Node 24 fetch', () => {
  let echo: TestServer;
  let sidecar: RunningSidecar;
  let proxy: number;

  beforeAll(async () => {
    echo = await echoServer();
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  billing: { endpoints: [${echo.url}] }
egress:
  listen: 127.0.0.1:0
  routes:
    - { name: billing, match: { host: billing.internal }, upstream: billing }
`);
    proxy = sidecar.egressPort!;
  });
  afterAll(async () => {
    await sidecar.close();
    await echo.close();
  });

  it('reads 403 with x-sidecar-error: destination_denied and the JSON body (a child Node 24 process)', async () => {
    const script = [
      "const r = await fetch('http://denied.invalid/report');",
      "console.log(JSON.stringify({ status: r.status, error: r.headers.get('x-sidecar-error'), body: await r.json() }));",
    ].join('\n');
    const env = clientEnv({ HTTP_PROXY: sidecar.egressUrl!, HTTPS_PROXY: sidecar.egressUrl!, NODE_USE_ENV_PROXY: '1' });
    const result = await run(NODE, ['--input-type=module', '-e', script], env);
    expect(result.code, result.stderr).toBe(0);
    const seen = JSON.parse(result.stdout.trim());
    expect(seen).toMatchObject({ status: 403, error: 'destination_denied', body: { error: 'destination_denied' } });
    // The allowed name still works through the same kind of tunnel.
    const allowed = await run(NODE, ['--input-type=module', '-e', "const r = await fetch('http://billing.internal/ok'); console.log(r.status);"], env);
    expect(allowed.stdout.trim()).toBe('200');
  });

  it('answers every request inside the tunnel, one after the other on one connection', async () => {
    const tunnel = await openConnect(proxy, 'denied.invalid:80');
    expect(tunnel.status).toBe(200);
    tunnel.socket.write('GET /one HTTP/1.1\r\nHost: denied.invalid\r\n\r\nPOST /two HTTP/1.1\r\nHost: denied.invalid\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi');
    const answers = await readAll(tunnel.socket);
    expect(answers.match(/HTTP\/1\.1 403 /g)).toHaveLength(2);
    expect(answers.match(/x-sidecar-error: destination_denied/g)).toHaveLength(2);
  });

  it('closes such a tunnel when the bytes inside are not HTTP, or when nothing comes', async () => {
    const tls = await openConnect(proxy, 'denied.invalid:80');
    tls.socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05]));
    expect(await readAll(tls.socket)).toBe('');
    const silent = await openConnect(proxy, 'denied.invalid:80');
    expect(await closedWithin(silent.socket, 3_000)).toBe(true);
  });

  it('still refuses a CONNECT to another port at once (HTTPS: the client shows the 403)', async () => {
    for (const target of ['denied.invalid:443', 'denied.invalid:8080']) {
      const tunnel = await openConnect(proxy, target);
      expect(tunnel.status, target).toBe(403);
      expect(tunnel.response, target).toMatch(/x-sidecar-error: destination_denied/);
    }
  });
});
