/**
 * TLS origination on egress: the app speaks plain http:// to a logical name
 * and the sidecar speaks TLS to the upstream's https:// endpoint (with the
 * upstream's CA and server name); and an absolute-form https:// target (a few
 * clients send them) is fetched over TLS rather than refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';
import { rawExchange } from './helpers/raw.ts';
import { makeTestPki, startHttpsServer, type TestHttpsServer, type TestPki } from './helpers/tls.ts';
import { proxiedRequest } from './helpers/egress.ts';

/** Answers with what it saw: the TLS server name asked for, the Host, the path. */
function describeRequest(req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket as TLSSocket;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ encrypted: socket.encrypted === true, servername: (socket as { servername?: string | false }).servername, host: req.headers.host, url: req.url }));
}

describe('egress TLS origination', () => {
  let pki: TestPki;
  let secure: TestHttpsServer;

  beforeAll(async () => {
    pki = makeTestPki(['localhost', 'secure.test']);
    secure = await startHttpsServer(pki, describeRequest);
  });
  afterAll(async () => {
    await secure.close();
    pki.remove();
  });

  describe('a logical name mapped to an https:// upstream', () => {
    let sidecar: RunningSidecar;

    beforeAll(async () => {
      sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  named: { endpoints: ["https://localhost:${secure.port}"], tls: { ca: ${pki.caFile}, serverName: secure.test } }
  plain-name: { endpoints: ["https://localhost:${secure.port}"], tls: { ca: ${pki.caFile} } }
egress:
  listen: 127.0.0.1:0
  routes:
    - { match: { host: secure.internal }, upstream: named }
    - { match: { host: other.internal }, upstream: plain-name }
`);
    });
    afterAll(async () => {
      await sidecar.close();
    });

    it('speaks TLS to the endpoint, with tls.serverName as SNI and Host', async () => {
      const response = await proxiedRequest(sidecar.egressPort!, 'http://secure.internal/pay?x=1');
      expect(response.status, response.body).toBe(200);
      expect(JSON.parse(response.body)).toEqual({ encrypted: true, servername: 'secure.test', host: 'secure.test', url: '/pay?x=1' });
    });

    it("uses the endpoint's own authority as Host without a serverName", async () => {
      const response = await proxiedRequest(sidecar.egressPort!, 'http://other.internal/');
      expect(response.status, response.body).toBe(200);
      expect(JSON.parse(response.body)).toMatchObject({ encrypted: true, servername: 'localhost', host: `localhost:${secure.port}` });
    });
  });

  describe('an absolute-form https:// target', () => {
    let sidecar: SidecarProcess;
    let otherPki: TestPki;
    let untrusted: TestHttpsServer;

    beforeAll(async () => {
      otherPki = makeTestPki(['localhost']);
      untrusted = await startHttpsServer(otherPki, describeRequest);
      const file = writeConfig(`
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: false }
egress:
  listen: 127.0.0.1:0
  routes:
    - { match: { host: localhost, ports: [${secure.port}, ${untrusted.port}] } }
`);
      // The sidecar trusts the test CA the way a deployment adds a private CA.
      sidecar = await spawnSidecar(['--config', file], { env: { NODE_EXTRA_CA_CERTS: pki.caFile } });
    });
    afterAll(async () => {
      await sidecar?.stop();
      await untrusted.close();
      otherPki.remove();
    });

    it('originates TLS to the destination (SNI = the host asked for)', async () => {
      const target = `https://localhost:${secure.port}/abs`;
      const answer = await rawExchange(sidecar.egressPort!, `GET ${target} HTTP/1.1\r\nHost: localhost:${secure.port}\r\nConnection: close\r\n\r\n`);
      expect(answer).toMatch(/^HTTP\/1\.1 200 /);
      const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
      expect(body).toEqual({ encrypted: true, servername: 'localhost', host: `localhost:${secure.port}`, url: '/abs' });
    });

    it('answers 502 upstream_connect_failed when the certificate is not trusted', async () => {
      const target = `https://localhost:${untrusted.port}/abs`;
      const answer = await rawExchange(sidecar.egressPort!, `GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
      expect(answer).toMatch(/^HTTP\/1\.1 502 /);
      expect(answer).toMatch(/x-sidecar-error: upstream_connect_failed/);
    });
  });
});
