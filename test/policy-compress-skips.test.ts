/**
 * What compression leaves alone (issue 19): small bodies, types not worth it
 * (images), Range requests and 206s, HEAD, `Cache-Control: no-transform`,
 * bodies the upstream encoded itself, gRPC, and statuses without a body; and
 * `Vary: Accept-Encoding` exactly where the answer depends on it. Every
 * answer the client sends back decoded equals what the upstream sent.
 */
import { gzipSync } from 'node:zlib';
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { decoded, fetchRaw, textBody } from './helpers/encoded.ts';
import { metricValue } from './helpers/misbehave.ts';

const BIG = textBody(16 * 1024);
const SMALL = textBody(500);
const PRE_GZIPPED = gzipSync(BIG);

const answers: Record<string, (res: ServerResponse) => void> = {
  '/small': (res) => res.writeHead(200, { 'content-type': 'text/plain', 'content-length': SMALL.length }).end(SMALL),
  '/image': (res) => res.writeHead(200, { 'content-type': 'image/png', 'content-length': BIG.length }).end(BIG),
  '/no-transform': (res) => res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, no-transform' }).end(BIG),
  '/encoded': (res) => res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip', vary: 'Accept-Encoding' }).end(PRE_GZIPPED),
  '/partial': (res) => res.writeHead(206, { 'content-type': 'text/plain', 'content-range': `bytes 0-99/${BIG.length}` }).end(BIG.subarray(0, 100)),
  '/empty': (res) => res.writeHead(204).end(),
  // gRPC-Web: the gRPC that crosses HTTP/1.1 (gRPC proper needs HTTP/2 end to end, test/grpc-relay.test.ts).
  '/grpc': (res) => res.writeHead(200, { 'content-type': 'application/grpc-web+proto' }).end(BIG),
  '/unknown-length': (res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write(SMALL);
    res.end();
  },
  '/typeless': (res) => res.writeHead(200, { 'content-length': BIG.length }).end(BIG),
};

describe('compress: what is left as it is', () => {
  let upstream: TestServer;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    upstream = await startHttpServer((req, res) => {
      const path = req.url ?? '/';
      if (answers[path]) return answers[path](res);
      // Everything else: a big text, with ranges when asked (as a file server would).
      if (req.headers.range === 'bytes=0-99') {
        res.writeHead(206, { 'content-type': 'text/plain', 'content-range': `bytes 0-99/${BIG.length}`, 'content-length': 100 });
        return res.end(BIG.subarray(0, 100));
      }
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BIG.length, 'accept-ranges': 'bytes' });
      res.end(req.method === 'HEAD' ? undefined : BIG);
    });
    sidecar = await startSidecar(`${TEST_BASE}
upstreams: { app: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: app, match: { path: / }, upstream: app, compress: { minLength: 1KiB } }
`);
  });
  afterAll(async () => {
    await sidecar?.close();
    await upstream?.close();
  });

  const get = (path: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' | 'POST' = 'GET') =>
    fetchRaw(sidecar.url(path), { 'accept-encoding': 'gzip, br', ...headers }, method);

  it('compresses a big text, the control case', async () => {
    const answer = await get('/text');
    expect(answer.headers['content-encoding']).toBe('br');
    expect(decoded(answer).equals(BIG)).toBe(true);
  });

  it('leaves a body under minLength as it is, with Vary', async () => {
    const answer = await get('/small');
    expect(answer.headers['content-encoding']).toBeUndefined();
    expect(answer.headers['content-length']).toBe(String(SMALL.length));
    expect(answer.headers.vary).toBe('Accept-Encoding');
    expect(answer.body.equals(SMALL)).toBe(true);
  });

  it('compresses a body of unknown length, whatever its size', async () => {
    const answer = await get('/unknown-length');
    expect(answer.headers['content-encoding']).toBe('br');
    expect(decoded(answer).equals(SMALL)).toBe(true);
  });

  it('leaves images and bodies without a Content-Type alone, without Vary', async () => {
    for (const path of ['/image', '/typeless']) {
      const answer = await get(path);
      expect(answer.headers['content-encoding'], path).toBeUndefined();
      expect(answer.headers.vary, path).toBeUndefined();
      expect(answer.body.equals(BIG), path).toBe(true);
    }
  });

  it('answers a Range request with the range of the identity body, keeping Accept-Ranges semantics', async () => {
    const answer = await get('/text', { range: 'bytes=0-99' });
    expect(answer.status).toBe(206);
    expect(answer.headers['content-encoding']).toBeUndefined();
    expect(answer.headers['content-range']).toBe(`bytes 0-99/${BIG.length}`);
    expect(answer.headers.vary).toBe('Accept-Encoding');
    expect(answer.body.equals(BIG.subarray(0, 100))).toBe(true);
  });

  it('leaves a 206 the upstream sent unasked alone', async () => {
    const answer = await get('/partial');
    expect(answer.status).toBe(206);
    expect(answer.headers['content-encoding']).toBeUndefined();
    expect(answer.body.equals(BIG.subarray(0, 100))).toBe(true);
  });

  it('answers HEAD with the identity head: Content-Length and Accept-Ranges kept, Vary added', async () => {
    const answer = await get('/text', {}, 'HEAD');
    expect(answer.status).toBe(200);
    expect(answer.headers['content-encoding']).toBeUndefined();
    expect(answer.headers['content-length']).toBe(String(BIG.length));
    expect(answer.headers['accept-ranges']).toBe('bytes');
    expect(answer.headers.vary).toBe('Accept-Encoding');
    expect(answer.body.length).toBe(0);
  });

  it('leaves Cache-Control: no-transform alone', async () => {
    const answer = await get('/no-transform');
    expect(answer.headers['content-encoding']).toBeUndefined();
    expect(answer.body.equals(BIG)).toBe(true);
  });

  it('never encodes twice: the upstream gzip passes as it is', async () => {
    const answer = await get('/encoded', { 'accept-encoding': 'br' });
    expect(answer.headers['content-encoding']).toBe('gzip');
    expect(answer.headers.vary).toBe('Accept-Encoding');
    expect(answer.body.equals(PRE_GZIPPED)).toBe(true);
  });

  it('leaves gRPC alone: it frames and compresses its own messages', async () => {
    const answer = await get('/grpc', { 'content-type': 'application/grpc-web+proto' }, 'POST');
    expect(answer.headers['content-encoding']).toBeUndefined();
    expect(answer.body.equals(BIG)).toBe(true);
  });

  it('passes a 204 as it is', async () => {
    const answer = await get('/empty');
    expect(answer.status).toBe(204);
    expect(answer.headers['content-encoding']).toBeUndefined();
  });

  it('counts why each answer was left alone', async () => {
    const count = (result: string) => metricValue(sidecar.admin('/metrics'), 'sidecar_compression_total', { route: 'app', result });
    for (const result of ['too_small', 'type', 'range', 'head', 'no_transform', 'encoded', 'grpc', 'status']) {
      expect(await count(result), result).toBeGreaterThan(0);
    }
  });
});
