/**
 * Header translation between HTTP/2 and HTTP/1.1, both ways (RFC 9113 8.2.2,
 * 8.2.3, 8.3.1), and `upstreams.NAME.protocol` choosing what undici speaks
 * (issue 18): an h2 client's split cookies reach an HTTP/1.1 app as one
 * field, no pseudo-header leaks, `TE: trailers` goes to HTTP/2 upstreams
 * only, connection-specific fields of an HTTP/1.1 answer never reach the h2
 * client, a Host that disagrees with :authority is refused. An https
 * upstream that offers h2 and HTTP/1.1 gets HTTP/1.1 by default, h2 with
 * `protocol: h2` or `auto`; `h2` to an endpoint without h2 is a connect failure.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClientHttp2Session } from 'node:http2';
import { echoStream, h2cServer, h2Request, h2Session, h2TlsServer, type TestH2Server } from './helpers/h2.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { TestCa } from './helpers/tls.ts';

interface Seen {
  httpVersion: string;
  headers: Record<string, string | string[]>;
}

describe('HTTP/2 <-> HTTP/1.1 translation and upstream protocols', () => {
  let h1: TestServer;
  let h2c: TestH2Server;
  let both: TestH2Server;
  let onlyH1: TestServer;
  let ca: TestCa;
  let sidecar: RunningSidecar;
  let session: ClientHttp2Session;

  beforeAll(async () => {
    ca = new TestCa();
    const cert = ca.issue('localhost', { dns: ['localhost'], ips: ['127.0.0.1'] });
    h1 = await startHttpServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json', connection: 'x-hop', 'x-hop': 'only for this connection', 'keep-alive': 'timeout=5', 'x-kept': 'yes' });
      res.end(JSON.stringify({ httpVersion: req.httpVersion, headers: req.headers, raw: req.rawHeaders }));
    });
    h2c = await h2cServer(echoStream);
    both = await h2TlsServer({ cert: cert.cert, key: cert.key }, echoStream, true, (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ httpVersion: req.httpVersion, headers: req.headers }));
    });
    const { createServer } = await import('node:https');
    onlyH1 = await (async () => {
      const server = createServer({ cert: cert.cert, key: cert.key }, (_req, res) => res.end('h1 only'));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as { port: number }).port;
      return { server, port, url: `https://127.0.0.1:${port}`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) } as unknown as TestServer;
    })();
    const tls = `tls: { ca: ${ca.caFile}, serverName: localhost }`;
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  h1: { endpoints: [${h1.url}] }
  h2c: { endpoints: [${h2c.url}], protocol: h2c }
  default: { endpoints: [${both.url}], ${tls} }
  auto: { endpoints: [${both.url}], protocol: auto, ${tls} }
  h2: { endpoints: [${both.url}], protocol: h2, ${tls} }
  h2-refused: { endpoints: [${onlyH1.url}], protocol: h2, ${tls} }
ingress:
  listen: 127.0.0.1:0
  h2c: true
  routes:
    - { match: { path: /h1 }, upstream: h1 }
    - { match: { path: /h2c }, upstream: h2c }
    - { match: { path: /default }, upstream: default }
    - { match: { path: /auto }, upstream: auto }
    - { match: { path: /h2-refused }, upstream: h2-refused }
    - { match: { path: /h2 }, upstream: h2 }
`);
    session = await h2Session(`http://127.0.0.1:${sidecar.sidecar.ingressPort}`);
  });
  afterAll(async () => {
    session?.close();
    await sidecar?.close();
    for (const server of [h1, h2c, both, onlyH1]) await server?.close();
    ca?.remove();
  });

  const seen = async (path: string, headers: Record<string, string | string[]> = {}): Promise<Seen & { raw?: string[] }> => {
    const answer = await h2Request(session, { ':path': path, ...headers });
    expect(answer.status).toBe(200);
    return JSON.parse(answer.body.toString()) as Seen & { raw?: string[] };
  };

  it('to HTTP/1.1: cookies joined with "; ", Host from :authority, no pseudo-header, no TE', async () => {
    const echo = await seen('/h1', { cookie: ['a=1', 'b=2'], te: 'trailers' });
    expect(echo.httpVersion).toBe('1.1');
    expect(echo.headers.cookie).toBe('a=1; b=2');
    expect(echo.raw!.filter((_, i) => i % 2 === 0 && echo.raw![i].toLowerCase() === 'cookie')).toHaveLength(1);
    expect(echo.headers.host).toBe(`127.0.0.1:${sidecar.sidecar.ingressPort}`);
    expect(echo.headers.te).toBeUndefined();
    expect(echo.raw!.some((name, i) => i % 2 === 0 && name.startsWith(':'))).toBe(false);
  });

  it('from HTTP/1.1: Connection, what it names and Keep-Alive never reach the HTTP/2 client', async () => {
    const answer = await h2Request(session, { ':path': '/h1' });
    expect(answer.headers['x-kept']).toBe('yes');
    expect(answer.headers['x-hop']).toBeUndefined();
    expect(answer.headers['keep-alive']).toBeUndefined();
    expect(answer.headers.connection).toBeUndefined();
  });

  it('to an h2c upstream: HTTP/2 with TE: trailers', async () => {
    const echo = await seen('/h2c', { te: 'trailers' });
    expect(echo.httpVersion).toBe('2');
    expect(echo.headers.te).toBe('trailers');
    expect(echo.headers[':authority']).toBe(`127.0.0.1:${sidecar.sidecar.ingressPort}`);
  });

  it('an https upstream offering h2 and HTTP/1.1: HTTP/1.1 by default, h2 with protocol h2 or auto', async () => {
    expect((await seen('/default')).httpVersion).toBe('1.1');
    expect((await seen('/auto')).httpVersion).toBe('2');
    expect((await seen('/h2')).httpVersion).toBe('2');
  });

  it('protocol: h2 to an endpoint whose ALPN does not choose h2: 502 upstream_connect_failed', async () => {
    const answer = await h2Request(session, { ':path': '/h2-refused' });
    expect(answer.status).toBe(502);
    expect(answer.headers['x-sidecar-error']).toBe('upstream_connect_failed');
  });

  it('a Host field that names another authority than :authority: 400', async () => {
    const answer = await h2Request(session, { ':path': '/h1', ':authority': `127.0.0.1:${sidecar.sidecar.ingressPort}`, host: 'elsewhere.example' });
    expect(answer.status).toBe(400);
    expect(answer.headers['x-sidecar-error']).toBe('bad_request');
  });
});
