/**
 * The TLS server name and certificate check for an https upstream come from
 * `tls.serverName`, else the endpoint's host, never from the client's Host
 * (issue 20). Before, a bogus Host made the handshake fail, and six such
 * requests opened the breaker for everybody.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TLSSocket } from 'node:tls';
import { makeTestPki, startHttpsServer, type TestHttpsServer, type TestPki } from './helpers/tls.ts';
import { parseRawResponse, rawExchange } from './helpers/raw.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

describe('TLS to https upstreams ignores the client Host', () => {
  let pki: TestPki;
  let upstream: TestHttpsServer;
  let sidecar: RunningSidecar;
  let handshakes = 0;

  beforeAll(async () => {
    pki = makeTestPki(['localhost', 'secure.test'], ['127.0.0.1']);
    upstream = await startHttpsServer(pki, (req, res) => {
      req.resume();
      // What the sidecar named in its ClientHello (false: no SNI, as for an IP address).
      res.end(JSON.stringify({ sni: (req.socket as TLSSocket).servername, host: req.headers.host }));
    });
    upstream.server.on('secureConnection', () => handshakes++);
    const breaker = 'breaker: { minRequests: 5, errorRate: 0.5, window: 10s, openFor: 30s }';
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  by-ip: { endpoints: [https://127.0.0.1:${upstream.port}], tls: { ca: ${pki.caFile} }, ${breaker} }
  by-name: { endpoints: [https://localhost:${upstream.port}], tls: { ca: ${pki.caFile} }, ${breaker} }
  named: { endpoints: [https://127.0.0.1:${upstream.port}], tls: { ca: ${pki.caFile}, serverName: secure.test }, ${breaker} }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: /ip/ }, upstream: by-ip }
    - { match: { path: /name/ }, upstream: by-name }
    - { match: { path: /named/ }, upstream: named }
`);
  });
  afterAll(async () => {
    await sidecar?.close();
    await upstream?.close();
    pki?.remove();
  });

  const cases = [
    { path: '/ip/', sni: false },
    { path: '/name/', sni: 'localhost' },
    { path: '/named/', sni: 'secure.test' },
  ] as const;

  it('requests with bogus Host headers all succeed, with the endpoint\'s own server name', async () => {
    const hosts = ['bogus.example', 'evil.test', 'localhost.attacker.example', '10.9.8.7', 'secure.test.evil'];
    for (const { path, sni } of cases) {
      for (let i = 0; i < 12; i++) {
        const host = hosts[i % hosts.length];
        const answer = parseRawResponse(await rawExchange(sidecar.sidecar.ingressPort!, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
        expect(answer.status, `${path} with Host ${host}: ${answer.head}\n${answer.body}`).toBe(200);
        expect(JSON.parse(answer.body), `${path} ${i}`).toEqual({ sni, host });
      }
    }
    // A changing Host no longer makes undici reconnect: one handshake per endpoint.
    expect(handshakes).toBe(cases.length);
  });
});
