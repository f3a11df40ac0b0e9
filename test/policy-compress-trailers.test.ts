/**
 * Trailers survive compression (issue 19): the upstream's trailers follow
 * the compressed body to an HTTP/1.1 client, whether the body came whole
 * (compressed in one call, policy/encoded-body.ts) or in pieces over time
 * (streamed through an encoder and flushed).
 */
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRawResponse, rawExchange } from './helpers/raw.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { textBody } from './helpers/encoded.ts';

const BODY = textBody(4 * 1024);

describe('compress: trailers', () => {
  let upstream: TestServer;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    upstream = await startHttpServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
      const finish = () => {
        res.addTrailers({ 'x-checksum': 'sha256=abc' });
        res.end();
      };
      if (req.url === '/whole') {
        res.write(BODY);
        finish();
        return;
      }
      // In two halves, the second well after the first: the body is streamed.
      res.write(BODY.subarray(0, 2048));
      setTimeout(() => {
        res.write(BODY.subarray(2048));
        finish();
      }, 50);
    });
    sidecar = await startSidecar(`${TEST_BASE}
upstreams: { app: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: / }, upstream: app, compress: { algorithms: [gzip] } }
`);
  });
  afterAll(async () => {
    await sidecar?.close();
    await upstream?.close();
  });

  for (const path of ['/whole', '/halves']) {
    it(`relays the trailers after a compressed body (${path})`, async () => {
      const answer = parseRawResponse(
        await rawExchange(sidecar.sidecar.ingressPort!, `GET ${path} HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n`),
      );
      expect(answer.status).toBe(200);
      expect(answer.headers['content-encoding']).toBe('gzip');
      expect(answer.headers['transfer-encoding']).toBe('chunked');
      expect(gunzipSync(Buffer.from(answer.body, 'latin1')).equals(BODY)).toBe(true);
      expect(answer.trailers).toEqual({ 'x-checksum': 'sha256=abc' });
    });
  }
});
