/**
 * Trailers from the upstream reach clients that can take them (issue 20):
 * an HTTP/1.1 client with a chunked response gets them (no `TE: trailers`
 * needed); an HTTP/1.0 client, a HEAD, or a response with Content-Length
 * gets the body without them, and without a Trailer header announcing them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRawResponse, rawExchange, startTcpServer } from './helpers/raw.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

/** Raw upstream answers by method and path: bytes as an upstream may send them. */
const ANSWERS: Record<string, string> = {
  // Framing and routing fields, and what a response rule removes, never go on as trailers.
  'GET /chunked':
    'HTTP/1.1 200 OK\r\nTrailer: x-checksum, x-secret\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n' +
    '3\r\nabc\r\n0\r\nx-checksum: sha256=abc\r\nx-secret: hidden\r\ntransfer-encoding: gzip\r\nhost: elsewhere\r\n\r\n',
  'HEAD /chunked': 'HTTP/1.1 200 OK\r\nTrailer: x-checksum\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n',
  'GET /sized': 'HTTP/1.1 200 OK\r\nTrailer: x-checksum\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc',
};

describe('trailers', () => {
  let upstream: Awaited<ReturnType<typeof startTcpServer>>;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    upstream = await startTcpServer((socket) => {
      socket.once('data', (chunk: Buffer) => {
        const line = /^(\S+ \S+)/.exec(chunk.toString('latin1'))?.[1] ?? '';
        socket.end(ANSWERS[line] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      });
    });
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  app: { endpoints: [http://127.0.0.1:${upstream.port}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: / }, upstream: app, headers: { response: { remove: [x-secret] } } }
`);
  });
  afterAll(async () => {
    await sidecar?.close();
    await upstream?.close();
  });

  const send = async (method: string, path: string, version: string) =>
    parseRawResponse(await rawExchange(sidecar.sidecar.ingressPort!, `${method} ${path} HTTP/${version}\r\nHost: a\r\nConnection: close\r\n\r\n`));

  it('relays the upstream trailers to an HTTP/1.1 client, after a chunked body', async () => {
    const answer = await send('GET', '/chunked', '1.1');
    expect(answer.status).toBe(200);
    expect(answer.headers['transfer-encoding']).toBe('chunked');
    expect(answer.headers.trailer).toBe('x-checksum, x-secret');
    expect(answer.body).toBe('abc');
    expect(answer.trailers).toEqual({ 'x-checksum': 'sha256=abc' });
  });

  it('an HTTP/1.0 client, a HEAD and a sized response get no trailers and no Trailer header', async () => {
    for (const [method, path, version] of [['GET', '/chunked', '1.0'], ['HEAD', '/chunked', '1.1'], ['GET', '/sized', '1.1']]) {
      const answer = await send(method, path, version);
      const what = `${method} ${path} HTTP/${version}`;
      expect(answer.status, what).toBe(200);
      expect(answer.headers.trailer, what).toBeUndefined();
      expect(answer.body, what).toBe(method === 'HEAD' ? '' : 'abc');
      expect(answer.trailers, what).toEqual({});
    }
  });
});
