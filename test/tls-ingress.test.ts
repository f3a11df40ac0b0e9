/**
 * HTTPS on ingress (issue 17): with `ingress.tls` the listener speaks TLS
 * only. Real clients (curl --cacert, Node's https, undici) reach the app,
 * which is told `X-Forwarded-Proto: https` whatever the client claims; plain
 * HTTP on the TLS port gets the sidecar's 400 "use https" and the connection
 * is closed, as NGINX does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { request as httpsRequest } from 'node:https';
import { Agent, request } from 'undici';
import { clientEnv, run } from './helpers/egress.ts';
import { parseRawResponse } from './helpers/raw.ts';
import { metric } from './helpers/reload.ts';
import { echoServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { TestCa, type IssuedCert } from './helpers/tls.ts';

interface Echo {
  url: string;
  headers: Record<string, string>;
}

describe('HTTPS on ingress', () => {
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

  it('curl --cacert reaches the app, which is told https even when the client says http', async () => {
    const result = await run(
      'curl',
      ['-sS', '--cacert', ca.caFile, '--resolve', `localhost:${port}:127.0.0.1`, '-H', 'X-Forwarded-Proto: http', `https://localhost:${port}/curl?a=1`],
      clientEnv(),
    );
    expect(result.stderr).toBe('');
    const echo = JSON.parse(result.stdout) as Echo;
    expect(echo.url).toBe('/curl?a=1');
    expect(echo.headers['x-forwarded-proto']).toBe('https');
  });

  it("Node's https and undici reach the app over TLS", async () => {
    const viaHttps = await new Promise<Echo>((resolve, reject) => {
      httpsRequest({ host: '127.0.0.1', port, path: '/node-https', ca: ca.ca, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve(JSON.parse(body) as Echo));
      })
        .on('error', reject)
        .end();
    });
    expect(viaHttps).toMatchObject({ url: '/node-https', headers: { 'x-forwarded-proto': 'https' } });

    const dispatcher = new Agent({ connect: { ca: ca.ca } });
    try {
      const response = await request(`https://localhost:${port}/undici`, { dispatcher });
      expect(response.statusCode).toBe(200);
      expect(await response.body.json()).toMatchObject({ url: '/undici', headers: { 'x-forwarded-proto': 'https' } });
    } finally {
      await dispatcher.close();
    }
  });

  it('plain HTTP on the TLS port gets 400 bad_request "use https", and the connection is closed', async () => {
    const admin = sidecar.admin('').replace(/\/$/, '');
    const before = await metric(admin, 'sidecar_bad_requests_total', '{listener="ingress",code="bad_request"}');
    const { text, closedByServer } = await new Promise<{ text: string; closedByServer: boolean }>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      let text = '';
      const timer = setTimeout(() => {
        socket.destroy();
        resolve({ text, closedByServer: false });
      }, 5_000);
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => (text += chunk));
      socket.once('end', () => {
        clearTimeout(timer);
        socket.destroy();
        resolve({ text, closedByServer: true });
      });
      socket.write(`GET /plain HTTP/1.1\r\nHost: localhost:${port}\r\n\r\n`);
    });
    const answer = parseRawResponse(text);
    expect(answer.status).toBe(400);
    expect(answer.headers['x-sidecar-error']).toBe('bad_request');
    expect(answer.headers.connection).toBe('close');
    expect(JSON.parse(answer.body)).toMatchObject({ error: 'bad_request', message: expect.stringContaining('use https') });
    expect(closedByServer).toBe(true);
    expect(await metric(admin, 'sidecar_bad_requests_total', '{listener="ingress",code="bad_request"}')).toBe(before + 1);

    // fetch (undici) as a user would try it: the same answer.
    const response = await fetch(`http://127.0.0.1:${port}/plain`);
    expect(response.status).toBe(400);
    expect(response.headers.get('x-sidecar-error')).toBe('bad_request');
  });
});
