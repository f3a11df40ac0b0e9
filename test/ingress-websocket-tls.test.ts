/**
 * A WebSocket upgrade to an `https://` upstream uses the upstream's `tls`
 * settings, as its requests do: `ca` (a CA made in the test), `serverName`
 * (SNI and the certificate check, here different from the endpoint's host),
 * `insecureSkipVerify`; without a `serverName` the endpoint's host is the
 * name, never the client's Host (an IP endpoint: no SNI at all).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TLSSocket } from 'node:tls';
import { makeTestPki, startHttpsServer, type TestHttpsServer, type TestPki } from './helpers/tls.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { attachEchoServer, roundTrip, upgrade } from './helpers/websocket.ts';

describe('WebSocket upgrades to https upstreams', () => {
  let pki: TestPki;
  let upstream: TestHttpsServer;
  let echo: ReturnType<typeof attachEchoServer>;
  const serverNames: Array<string | false | null> = [];
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    // A certificate for two names and no IP: reaching 127.0.0.1 needs the right name.
    pki = makeTestPki(['ws.upstream.test', 'localhost'], []);
    upstream = await startHttpsServer(pki, (_req, res) => res.end('plain'));
    upstream.server.on('secureConnection', (socket: TLSSocket) => serverNames.push(socket.servername));
    echo = attachEchoServer(upstream.server);
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  named: { endpoints: ["https://127.0.0.1:${upstream.port}"], tls: { ca: ${pki.caFile}, serverName: ws.upstream.test } }
  byHost: { endpoints: ["https://localhost:${upstream.port}"], tls: { ca: ${pki.caFile} } }
  untrusted: { endpoints: ["https://127.0.0.1:${upstream.port}"], tls: { serverName: ws.upstream.test } }
  skip: { endpoints: ["https://127.0.0.1:${upstream.port}"], tls: { insecureSkipVerify: true } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: /named }, upstream: named, websocket: true }
    - { match: { path: /by-host }, upstream: byHost, websocket: true }
    - { match: { path: /untrusted }, upstream: untrusted, websocket: true }
    - { match: { path: /skip }, upstream: skip, websocket: true }
`);
  });
  afterAll(async () => {
    await sidecar.close();
    echo.wss.close();
    await upstream.close();
    pki.remove();
  });

  const wsUrl = (path: string) => sidecar.url(path).replace('http:', 'ws:');

  it('trusts the upstream tls.ca and sends tls.serverName as SNI, not the endpoint IP or the client Host', async () => {
    serverNames.length = 0;
    const result = await upgrade(wsUrl('/named'), { headers: { host: 'client.example' } });
    if (result.kind !== 'open') throw new Error(`upgrade not open: ${JSON.stringify(result)}`);
    expect(result.hello).toBe('hello /named');
    expect(await roundTrip(result.ws, 'over tls')).toBe('echo:over tls');
    expect(serverNames).toEqual(['ws.upstream.test']);
    result.ws.close();
  });

  it('without serverName, names the endpoint host (SNI and certificate check), whatever Host the client sent', async () => {
    serverNames.length = 0;
    const result = await upgrade(wsUrl('/by-host'), { headers: { host: 'client.example' } });
    expect(result.kind).toBe('open');
    expect(serverNames).toEqual(['localhost']);
    if (result.kind === 'open') result.ws.close();
  });

  it('refuses a certificate its CAs do not vouch for: 502 upstream_connect_failed', async () => {
    const result = await upgrade(wsUrl('/untrusted'));
    expect(result).toMatchObject({ kind: 'answered', status: 502, error: 'upstream_connect_failed' });
  });

  it('insecureSkipVerify: true connects without checking the certificate', async () => {
    const result = await upgrade(wsUrl('/skip'));
    expect(result.kind).toBe('open');
    if (result.kind === 'open') result.ws.close();
  });

  it('an IP endpoint without serverName sends no SNI (an IP is not allowed there), not the client Host', async () => {
    serverNames.length = 0;
    const result = await upgrade(wsUrl('/skip'), { headers: { host: 'client.example' } });
    expect(result.kind).toBe('open');
    expect(serverNames).toEqual([false]);
    if (result.kind === 'open') result.ws.close();
  });
});
