/**
 * A stream an HTTP/2 upstream refuses before processing it (RST_STREAM
 * REFUSED_STREAM, RFC 9113 8.7) is safe to send again whatever its method:
 * a POST with a streamed body, on a route without `retry`, is answered by the
 * second try, and the answer says `x-sidecar-attempts: 2`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { constants } from 'node:http2';
import { h2cServer, h2Request, h2Session, type TestH2Server } from './helpers/h2.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

describe('REFUSED_STREAM from an HTTP/2 upstream', () => {
  let upstream: TestH2Server;
  let sidecar: RunningSidecar;
  let streams = 0;

  beforeAll(async () => {
    upstream = await h2cServer((stream) => {
      stream.on('error', () => {});
      // The first stream is refused unprocessed (as a server at its stream limit does); the others are served.
      if (++streams === 1) return void stream.close(constants.NGHTTP2_REFUSED_STREAM);
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (body += chunk));
      stream.on('end', () => {
        stream.respond({ ':status': 200 });
        stream.end(`got ${body.length} bytes`);
      });
    });
    sidecar = await startSidecar(`${TEST_BASE}
upstreams: { app: { endpoints: [${upstream.url}], protocol: h2c } }
ingress:
  listen: 127.0.0.1:0
  h2c: true
  routes: [ { match: { path: / }, upstream: app } ]
`);
  });
  afterAll(async () => {
    await sidecar?.close();
    await upstream?.close();
  });

  it('a refused POST is tried again at once, without a retry policy', async () => {
    const session = await h2Session(`http://127.0.0.1:${sidecar.sidecar.ingressPort}`);
    try {
      const answer = await h2Request(session, { ':path': '/submit', ':method': 'POST' }, 'x'.repeat(1000));
      expect(answer.status).toBe(200);
      expect(answer.body.toString()).toBe('got 1000 bytes');
      expect(answer.headers['x-sidecar-attempts']).toBe('2');
      expect(streams).toBe(2);
    } finally {
      session.close();
    }
  });
});
