/**
 * `Upgrade: h2c` (issue 23), what `curl --http2 http://...` sends: the offer
 * is ignored and the request answered as plain HTTP/1.1, proxied normally,
 * without `upgrade` / `http2-settings` going upstream. Before, the ingress
 * took it for a WebSocket upgrade: an empty reply on a WebSocket route, a 404
 * elsewhere. WebSocket upgrades themselves: ingress-streaming.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoServer, type TestServer } from './helpers/servers.ts';
import { parseRawResponse, rawExchange } from './helpers/raw.ts';
import { clientEnv, run } from './helpers/egress.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

interface Echoed {
  url: string;
  headers: Record<string, string>;
}

const H2C_OFFER = 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n';

describe('Upgrade: h2c is answered as HTTP/1.1', () => {
  let echo: TestServer;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    echo = await echoServer();
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  echo: { endpoints: [${echo.url}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: ws, match: { path: /ws/ }, upstream: echo, websocket: true }
    - { name: plain, match: { path: / }, upstream: echo }
egress:
  listen: 127.0.0.1:0
  routes:
    - { match: { host: app.internal }, upstream: echo }
`);
  });
  afterAll(async () => {
    await sidecar?.close();
    await echo?.close();
  });

  function expectPlainForward(seen: Echoed, url: string): void {
    expect(seen.url).toBe(url);
    expect(seen.headers.upgrade).toBeUndefined();
    expect(seen.headers['http2-settings']).toBeUndefined();
    expect(seen.headers.connection ?? '').not.toMatch(/upgrade/i);
  }

  it('curl --http2 gets an HTTP/1.1 answer on a WebSocket route and on a plain one', async () => {
    for (const path of ['/ws/chat', '/plain']) {
      const result = await run('curl', ['-sS', '--http2', '-w', '\\n%{http_code} %{http_version}', sidecar.url(path)], clientEnv());
      expect(result.code, `${path}: ${result.stderr}`).toBe(0);
      const [body, status] = result.stdout.split('\n');
      expect(status, path).toBe('200 1.1');
      expectPlainForward(JSON.parse(body) as Echoed, path);
    }
  });

  it('raw bytes: the offer is ignored, and the connection closes after the answer', async () => {
    // Node's parser drops what is pipelined behind an upgrade offer it was told to ignore: the second
    // request never gets an answer on this connection, so the client is told to go elsewhere for it.
    const twice = `GET /ws/one HTTP/1.1\r\nHost: a\r\n${H2C_OFFER}\r\nGET /ws/two HTTP/1.1\r\nHost: a\r\n\r\n`;
    const first = parseRawResponse(await rawExchange(sidecar.sidecar.ingressPort!, twice));
    expect(first.status).toBe(200);
    expect(first.headers.connection).toBe('close');
    expectPlainForward(JSON.parse(first.body) as Echoed, '/ws/one');
    const next = parseRawResponse(await rawExchange(sidecar.sidecar.ingressPort!, 'GET /ws/two HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'));
    expect(next.status).toBe(200);
  });

  it('egress: an h2c offer through the proxy is forwarded as a plain request', async () => {
    const result = await run('curl', ['-sS', '--http2', '-x', sidecar.egressUrl!, 'http://app.internal/via-proxy'], clientEnv());
    expect(result.code, result.stderr).toBe(0);
    expectPlainForward(JSON.parse(result.stdout) as Echoed, '/via-proxy');
  });
});
