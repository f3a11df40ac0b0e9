/**
 * An `https` upstream found through DNS (discovery.dns): its endpoints are
 * addresses, and the TLS name of every connection to them, a WebSocket's as
 * a request's, is the DNS name they were found under (SNI and the
 * certificate check), never the client's Host. The endpoint's agent takes it
 * from the same function as its pool (upstream/tls-options.ts).
 */
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startDnsServer, type TestDnsServer } from './helpers/dns.ts';
import { eventually, upstreamsView } from './helpers/misbehave.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { makeTestPki, startHttpsServer, type TestHttpsServer, type TestPki } from './helpers/tls.ts';
import { attachEchoServer, roundTrip, upgrade } from './helpers/websocket.ts';

const NAME = 'ws.discovered.test';

describe('WebSockets to an https upstream found through DNS', () => {
  let pki: TestPki;
  let upstream: TestHttpsServer;
  let echo: ReturnType<typeof attachEchoServer>;
  let dns: TestDnsServer;
  let sidecar: RunningSidecar;
  const serverNames: Array<string | false | null> = [];

  beforeAll(async () => {
    // A certificate for the DNS name only: reaching 127.0.0.1 needs that name.
    pki = makeTestPki([NAME], []);
    upstream = await startHttpsServer(pki, (_req, res) => res.end('plain'));
    upstream.server.on('secureConnection', (socket: TLSSocket) => serverNames.push(socket.servername));
    echo = attachEchoServer(upstream.server);
    dns = await startDnsServer();
    dns.set(NAME, ['127.0.0.1']);
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  found:
    discovery: { dns: { name: ${NAME}, port: ${upstream.port}, scheme: https, every: 1s, servers: [${dns.address}] } }
    tls: { ca: ${pki.caFile} }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: / }, upstream: found, websocket: true }
`);
    const found = await eventually(async () => (await upstreamsView(sidecar.admin('/upstreams'))).found.endpoints.length === 1, 100, 50);
    if (!found) throw new Error('the endpoint was not discovered');
  });
  afterAll(async () => {
    await sidecar.close();
    echo.wss.close();
    await upstream.close();
    await dns.close();
    pki.remove();
  });

  it('names the DNS name in the WebSocket TLS handshake, whatever Host the client sent', async () => {
    serverNames.length = 0;
    const result = await upgrade(sidecar.url('/chat').replace('http:', 'ws:'), { headers: { host: 'client.example' } });
    if (result.kind !== 'open') throw new Error(`upgrade not open: ${JSON.stringify(result)}`);
    expect(await roundTrip(result.ws, 'hi')).toBe('echo:hi');
    result.ws.close();
    expect(serverNames).toEqual([NAME]);
  });

  it('and in the requests of the pool, the same', async () => {
    serverNames.length = 0;
    const res = await request(sidecar.url('/plain'), { headers: { host: 'client.example' } });
    expect([res.statusCode, await res.body.text()]).toEqual([200, 'plain']);
    expect(serverNames).toEqual([NAME]);
  });
});
