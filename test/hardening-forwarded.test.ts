/**
 * X-Forwarded-For/-Proto/-Host from a client are believed only when the peer
 * is in the listener's `trustedProxies` (issue 20); from anyone else the
 * sidecar writes them itself. Ingress, egress (absolute-form) and HTTP inside
 * CONNECT; real clients on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoServer, type TestServer } from './helpers/servers.ts';
import { parseRawResponse, rawExchange } from './helpers/raw.ts';
import { openConnect, readAll } from './helpers/egress.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

const CLAIMS = 'X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: claimed.example\r\n';

/** The headers the echo upstream saw, from a raw answer. */
function seenHeaders(answer: string): Record<string, string> {
  const response = parseRawResponse(answer);
  expect(response.status, answer).toBe(200);
  return (JSON.parse(response.body) as { headers: Record<string, string> }).headers;
}

describe('X-Forwarded-* and trustedProxies', () => {
  let echo: TestServer;
  let plain: RunningSidecar;
  let trusting: RunningSidecar;

  beforeAll(async () => {
    echo = await echoServer();
    const config = (trusted: string) => `${TEST_BASE}
upstreams:
  echo: { endpoints: [${echo.url}] }
ingress:
  listen: 127.0.0.1:0
  trustedProxies: ${trusted}
  routes: [ { match: { path: / }, upstream: echo } ]
egress:
  listen: 127.0.0.1:0
  trustedProxies: ${trusted}
  routes: [ { match: { host: echo.internal }, upstream: echo } ]
`;
    plain = await startSidecar(config('[]'));
    trusting = await startSidecar(config('[10.0.0.0/8, 127.0.0.0/8, "::1"]'));
  });
  afterAll(async () => {
    await plain?.close();
    await trusting?.close();
    await echo?.close();
  });

  const viaIngress = (sidecar: RunningSidecar) =>
    rawExchange(sidecar.sidecar.ingressPort!, `GET /x HTTP/1.1\r\nHost: shop.test\r\n${CLAIMS}Connection: close\r\n\r\n`);
  const viaEgress = (sidecar: RunningSidecar) =>
    rawExchange(sidecar.egressPort!, `GET http://echo.internal/x HTTP/1.1\r\nHost: echo.internal\r\n${CLAIMS}Connection: close\r\n\r\n`);
  async function viaConnect(sidecar: RunningSidecar): Promise<string> {
    const tunnel = await openConnect(sidecar.egressPort!, 'echo.internal:80');
    const answer = readAll(tunnel.socket);
    tunnel.socket.write(`GET /x HTTP/1.1\r\nHost: echo.internal\r\n${CLAIMS}Connection: close\r\n\r\n`);
    return answer;
  }

  it('ingress: an untrusted client cannot claim https, an address or a host', async () => {
    const headers = seenHeaders(await viaIngress(plain));
    expect(headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(headers['x-forwarded-proto']).toBe('http');
    expect(headers['x-forwarded-host']).toBe('shop.test');
  });

  it('egress (absolute-form and inside CONNECT): the same for an untrusted app', async () => {
    for (const answer of [await viaEgress(plain), await viaConnect(plain)]) {
      const headers = seenHeaders(answer);
      expect(headers['x-forwarded-for']).toBe('127.0.0.1');
      expect(headers['x-forwarded-proto']).toBe('http');
      expect(headers['x-forwarded-host']).toBe('echo.internal');
    }
  });

  it('a trusted proxy keeps its X-Forwarded-Proto/Host, and X-Forwarded-For grows by its address', async () => {
    for (const answer of [await viaIngress(trusting), await viaEgress(trusting), await viaConnect(trusting)]) {
      const headers = seenHeaders(answer);
      expect(headers['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
      expect(headers['x-forwarded-proto']).toBe('https');
      expect(headers['x-forwarded-host']).toBe('claimed.example');
    }
  });
});
