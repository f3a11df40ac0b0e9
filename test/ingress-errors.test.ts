import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { closedPort, startHttpServer, type TestServer } from './helpers/servers.ts';
import { rawExchange, startTcpServer } from './helpers/raw.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

type Tcp = Awaited<ReturnType<typeof startTcpServer>>;

describe('error answers', () => {
  let ok: TestServer;
  let stall: TestServer;
  let reset: Tcp;
  let garbage: Tcp;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    ok = await startHttpServer((req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    stall = await startHttpServer(() => undefined); // never answers
    reset = await startTcpServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
    garbage = await startTcpServer((socket) => socket.once('data', () => socket.end('NOT HTTP AT ALL\r\n\r\n')));
    const refused = await closedPort();
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  ok: { endpoints: [${ok.url}] }
  refused: { endpoints: [http://127.0.0.1:${refused}], connectTimeout: 500ms }
  stall: { endpoints: [${stall.url}] }
  reset: { endpoints: [http://127.0.0.1:${reset.port}] }
  garbage: { endpoints: [http://127.0.0.1:${garbage.port}] }
ingress:
  listen: 127.0.0.1:0
  headersTimeout: 500ms
  requestTimeout: 5s
  maxHeaderSize: 4KiB
  routes:
    - { match: { path: /refused }, upstream: refused }
    - { match: { path: /stall }, upstream: stall, timeout: 300ms }
    - { match: { path: /reset }, upstream: reset }
    - { match: { path: /garbage }, upstream: garbage }
    - { match: { path: /small }, upstream: ok, maxBody: 10 }
    - { match: { path: /ok }, upstream: ok }
`);
  });
  afterAll(async () => {
    await sidecar.close();
    await Promise.all([ok.close(), stall.close(), reset.close(), garbage.close()]);
  });

  async function expectAnswer(path: string, status: number, code: string, init: Parameters<typeof request>[1] = {}) {
    const response = await request(sidecar.url(path), init);
    const body = (await response.body.json()) as { error: string; message: string };
    expect(response.statusCode).toBe(status);
    expect(response.headers['x-sidecar-error']).toBe(code);
    expect(response.headers['content-type']).toBe('application/json');
    expect(body.error).toBe(code);
    expect(body.message).toEqual(expect.any(String));
  }

  it('404 no_route', () => expectAnswer('/none', 404, 'no_route'));
  it('502 upstream_connect_failed when nothing listens', () => expectAnswer('/refused', 502, 'upstream_connect_failed'));
  it('502 upstream_reset when the upstream drops the connection', () => expectAnswer('/reset', 502, 'upstream_reset'));
  it('502 upstream_bad_response when the upstream does not speak HTTP', () => expectAnswer('/garbage', 502, 'upstream_bad_response'));
  it('504 upstream_timeout when the upstream stalls past the route timeout', () => expectAnswer('/stall', 504, 'upstream_timeout'));
  it('413 payload_too_large from Content-Length, without reading the body', () =>
    expectAnswer('/small', 413, 'payload_too_large', { method: 'POST', body: 'x'.repeat(100) }));

  it('413 payload_too_large for a chunked body that grows past maxBody', async () => {
    async function* chunks() {
      for (let i = 0; i < 5; i++) yield Buffer.from('abcdef');
    }
    await expectAnswer('/small', 413, 'payload_too_large', { method: 'POST', body: Readable.from(chunks()) });
  });

  it('400 bad_request for a malformed request, and the connection is closed', async () => {
    const answer = await rawExchange(sidecar.sidecar.ingressPort!, 'GET /ok HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('x-sidecar-error: bad_request');
    expect(answer).toContain('connection: close');
  });

  it('400 bad_request without a Host header', async () => {
    const answer = await rawExchange(sidecar.sidecar.ingressPort!, 'GET /ok HTTP/1.1\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
  });

  it('431 headers_too_large past maxHeaderSize', async () => {
    const answer = await rawExchange(sidecar.sidecar.ingressPort!, `GET /ok HTTP/1.1\r\nHost: a\r\nx-big: ${'a'.repeat(8000)}\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(answer).toContain('x-sidecar-error: headers_too_large');
  });

  it('414 uri_too_long', async () => {
    const answer = await rawExchange(sidecar.sidecar.ingressPort!, `GET /ok?${'q'.repeat(9000)} HTTP/1.1\r\nHost: a\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 (414|431) /);
  });

  it('501 not_implemented for a transfer coding other than chunked', async () => {
    const answer = await rawExchange(sidecar.sidecar.ingressPort!, 'POST /ok HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 501 /);
    expect(answer).toContain('x-sidecar-error: not_implemented');
  });

  it('408 request_timeout when the head trickles in slower than headersTimeout (slowloris)', async () => {
    const pieces = ['GET /ok HTTP/1.1\r\n', 'Host: a\r\n', 'x-a: 1\r\n', 'x-b: 2\r\n', 'x-c: 3\r\n', 'x-d: 4\r\n', '\r\n'];
    const answer = await rawExchange(sidecar.sidecar.ingressPort!, pieces, { pauseMs: 250, timeoutMs: 4_000 });
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toContain('x-sidecar-error: request_timeout');
  });

  it('keeps serving after all of the above', async () => {
    const response = await request(sidecar.url('/ok'));
    expect(response.statusCode).toBe(200);
    expect(await response.body.text()).toBe('ok');
  });
});
