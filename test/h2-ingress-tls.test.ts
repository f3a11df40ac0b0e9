/**
 * HTTP/2 on a TLS ingress listener (issue 18): ALPN offers h2 and
 * http/1.1; curl --http2 and Node's http2.connect get HTTP/2, an HTTP/1.1
 * client on the same port at the same time gets HTTP/1.1, and one connection
 * carries many concurrent streams. The app behind speaks HTTP/1.1 and is
 * told https.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpsRequest } from 'node:https';
import { clientEnv, run } from './helpers/egress.ts';
import { h2Request, h2Session } from './helpers/h2.ts';
import { metric } from './helpers/reload.ts';
import { echoServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { TestCa, type IssuedCert } from './helpers/tls.ts';

interface Echo {
  url: string;
  method: string;
  headers: Record<string, string>;
  rawHeaders: string[];
  body: string;
}

describe('HTTP/2 on a TLS ingress listener', () => {
  let ca: TestCa;
  let cert: IssuedCert;
  let app: TestServer;
  let sidecar: RunningSidecar;
  let port: number;

  beforeAll(async () => {
    ca = new TestCa();
    cert = ca.issue('localhost', { dns: ['localhost'], ips: ['127.0.0.1'] });
    app = await echoServer();
    sidecar = await startSidecar(`${TEST_BASE}
upstreams: { app: { endpoints: [${app.url}] } }
ingress:
  listen: 127.0.0.1:0
  tls: { cert: ${cert.certFile}, key: ${cert.keyFile} }
  routes: [ { match: { path: / }, upstream: app } ]
`);
    port = sidecar.sidecar.ingressPort!;
  });
  afterAll(async () => {
    await sidecar?.close();
    await app?.close();
    ca?.remove();
  });

  it('curl --http2 gets HTTP/2; the HTTP/1.1 app is told https and sees one Host', async () => {
    const result = await run(
      'curl',
      ['-sS', '--http2', '--cacert', ca.caFile, '--resolve', `localhost:${port}:127.0.0.1`, '-w', '\\n%{http_version}', `https://localhost:${port}/curl?a=1`],
      clientEnv(),
    );
    expect(result.stderr).toBe('');
    const [body, version] = result.stdout.split('\n');
    expect(version).toBe('2');
    const echo = JSON.parse(body) as Echo;
    expect(echo.url).toBe('/curl?a=1');
    expect(echo.headers['x-forwarded-proto']).toBe('https');
    expect(echo.headers.host).toBe(`localhost:${port}`);
    // No pseudo-header reaches HTTP/1.1.
    expect(echo.rawHeaders.filter((_, i) => i % 2 === 0).some((name) => name.startsWith(':'))).toBe(false);
  });

  it('one connection carries 50 concurrent streams, while an HTTP/1.1 client uses the same port', async () => {
    const session = await h2Session(`https://localhost:${port}`, { ca: ca.ca });
    try {
      const h1 = new Promise<{ status: number; version: string }>((resolve, reject) => {
        httpsRequest({ host: '127.0.0.1', port, path: '/h1', ca: ca.ca, servername: 'localhost', agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, version: res.httpVersion }));
        })
          .on('error', reject)
          .end();
      });
      const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => h2Request(session, { ':path': `/stream/${i}` })));
      for (const [i, answer] of answers.entries()) {
        expect(answer.status).toBe(200);
        expect((JSON.parse(answer.body.toString()) as Echo).url).toBe(`/stream/${i}`);
      }
      expect(await h1).toEqual({ status: 200, version: '1.1' });
    } finally {
      session.close();
    }
    expect(await metric(sidecar.admin(''), 'sidecar_requests_total', '{listener="ingress",route="ingress-0",upstream="app",method="GET",code="200",protocol="2"}')).toBeGreaterThanOrEqual(50);
  });

  it('a POST body over HTTP/2 arrives whole upstream', async () => {
    const session = await h2Session(`https://localhost:${port}`, { ca: ca.ca });
    try {
      const answer = await h2Request(session, { ':path': '/post', ':method': 'POST', 'content-type': 'text/plain' }, 'x'.repeat(100_000));
      expect(answer.status).toBe(200);
      const echo = JSON.parse(answer.body.toString()) as Echo;
      expect(echo.method).toBe('POST');
      expect(echo.body.length).toBe(100_000);
    } finally {
      session.close();
    }
  });
});
