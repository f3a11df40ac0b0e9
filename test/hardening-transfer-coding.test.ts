/**
 * Transfer codings (issue 20): Content-Length with Transfer-Encoding is 400;
 * a Transfer-Encoding other than exactly `chunked` is 501 not_implemented on
 * a request and 502 upstream_bad_response on a response, instead of the
 * coding being dropped while the coded bytes go on. Raw bytes, on ingress,
 * egress and inside CONNECT.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { parseRawResponse, rawExchange, startTcpServer } from './helpers/raw.ts';
import { openConnect, readAll } from './helpers/egress.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

type Tcp = Awaited<ReturnType<typeof startTcpServer>>;

/** Raw upstream answers, by request path. */
const ANSWERS: Record<string, string> = {
  '/gzip-chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  '/two-lines': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  '/gzip': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\nabc',
  '/chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
};

describe('transfer codings', () => {
  let upstream: TestServer;
  let raw: Tcp;
  let sidecar: RunningSidecar;
  const received: string[] = [];

  beforeAll(async () => {
    upstream = await startHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received.push(`${req.url} ${Buffer.concat(chunks).toString()}`);
        res.end('ok');
      });
    });
    raw = await startTcpServer((socket) => {
      socket.once('data', (chunk: Buffer) => {
        const path = /^GET (\S+)/.exec(chunk.toString('latin1'))?.[1] ?? '';
        socket.end(ANSWERS[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      });
    });
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  app: { endpoints: [${upstream.url}] }
  raw: { endpoints: [http://127.0.0.1:${raw.port}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: /raw/ }, upstream: raw, rewrite: { stripPrefix: /raw } }
    - { match: { path: / }, upstream: app }
egress:
  listen: 127.0.0.1:0
  routes:
    - { match: { host: app.internal }, upstream: app }
`);
  });
  afterAll(async () => {
    await sidecar?.close();
    await Promise.all([upstream?.close(), raw?.close()]);
  });

  /** Sends a request head (+ body) to ingress, egress (absolute-form) or inside a CONNECT tunnel. */
  async function send(where: 'ingress' | 'egress' | 'connect', head: string, body: string, version = '1.1') {
    const target = where === 'egress' ? 'http://app.internal/upload' : '/upload';
    const bytes = `POST ${target} HTTP/${version}\r\nHost: app.internal\r\n${head}Connection: close\r\n\r\n${body}`;
    if (where !== 'connect') return parseRawResponse(await rawExchange(where === 'ingress' ? sidecar.sidecar.ingressPort! : sidecar.egressPort!, bytes));
    const tunnel = await openConnect(sidecar.egressPort!, 'app.internal:80');
    const answer = readAll(tunnel.socket);
    tunnel.socket.write(bytes);
    return parseRawResponse(await answer);
  }

  for (const where of ['ingress', 'egress', 'connect'] as const) {
    it(`${where}: Content-Length with Transfer-Encoding is 400 bad_request, in either order`, async () => {
      const before = received.length;
      for (const head of ['Content-Length: 3\r\nTransfer-Encoding: chunked\r\n', 'Transfer-Encoding: chunked\r\nContent-Length: 3\r\n']) {
        const answer = await send(where, head, '3\r\nabc\r\n0\r\n\r\n');
        expect([answer.status, answer.headers['x-sidecar-error']], head).toEqual([400, 'bad_request']);
      }
      expect(received.slice(before)).toEqual([]);
    });

    it(`${where}: a transfer coding other than chunked is 501 not_implemented, and nothing is forwarded`, async () => {
      const before = received.length;
      for (const head of ['Transfer-Encoding: gzip, chunked\r\n', 'Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n', 'Transfer-Encoding: gzip\r\n']) {
        const answer = await send(where, head, '3\r\nabc\r\n0\r\n\r\n');
        expect([answer.status, answer.headers['x-sidecar-error']], head).toEqual([501, 'not_implemented']);
      }
      expect(received.slice(before)).toEqual([]);
    });

    it(`${where}: Transfer-Encoding in an HTTP/1.0 request is 400; plain chunked (any case) goes through`, async () => {
      const old = await send(where, 'Transfer-Encoding: chunked\r\n', '3\r\nabc\r\n0\r\n\r\n', '1.0');
      expect([old.status, old.headers['x-sidecar-error']]).toEqual([400, 'bad_request']);
      const fine = await send(where, 'Transfer-Encoding: Chunked\r\n', '3\r\nabc\r\n0\r\n\r\n');
      expect([fine.status, fine.body]).toEqual([200, 'ok']);
      expect(received.at(-1)).toBe('/upload abc');
    });
  }

  it('a response with a transfer coding other than chunked is 502 upstream_bad_response', async () => {
    for (const path of ['/gzip-chunked', '/two-lines', '/gzip']) {
      const answer = parseRawResponse(await rawExchange(sidecar.sidecar.ingressPort!, `GET /raw${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`));
      expect([answer.status, answer.headers['x-sidecar-error']], path).toEqual([502, 'upstream_bad_response']);
      expect(answer.body, path).not.toContain('abc');
    }
    const chunked = parseRawResponse(await rawExchange(sidecar.sidecar.ingressPort!, 'GET /raw/chunked HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'));
    expect([chunked.status, chunked.body]).toEqual([200, 'abc']);
  });
});
