/**
 * Compression of proxied answers (issue 19): the coding follows the client's
 * Accept-Encoding and its q-values, the configured order breaks ties, the
 * decoded body is exactly the upstream's, and the head says what was done:
 * Content-Encoding, no Content-Length or Accept-Ranges, Vary, the ETag of
 * the encoded variant. A listener's `compress` is the default of its routes;
 * `compress: false` turns it off for one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { decoded, fetchRaw, textBody } from './helpers/encoded.ts';
import { metricValue } from './helpers/misbehave.ts';

const BODY = textBody(64 * 1024);

describe('compress: the coding the client asked for', () => {
  let upstream: TestServer;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    upstream = await startHttpServer((req, res) => {
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': BODY.length,
        'accept-ranges': 'bytes',
        etag: '"v1"',
        vary: 'Origin',
      });
      res.end(BODY);
    });
    sidecar = await startSidecar(`${TEST_BASE}
upstreams: { app: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  compress: { algorithms: [br, gzip, zstd] }
  routes:
    - { name: plain, match: { path: /plain/ }, upstream: app, compress: false }
    - { name: gzip-first, match: { path: /gzip-first/ }, upstream: app, compress: { algorithms: [gzip, br] } }
    - { name: app, match: { path: / }, upstream: app }
`);
  });
  afterAll(async () => {
    await sidecar?.close();
    await upstream?.close();
  });

  it('gives each client the coding its q-values prefer, and the upstream bytes once decoded', async () => {
    const cases: Array<[string, string]> = [
      ['gzip', 'gzip'],
      ['br', 'br'],
      ['zstd', 'zstd'],
      ['gzip;q=1.0, br;q=0.5', 'gzip'],
      ['gzip;q=0.5, br;q=1.0', 'br'],
      ['br;q=0, gzip;q=0.1, *;q=0.2', 'zstd'],
      ['x-gzip', 'gzip'],
    ];
    for (const [accept, coding] of cases) {
      const answer = await fetchRaw(sidecar.url('/data'), { 'accept-encoding': accept });
      expect(answer.status, accept).toBe(200);
      expect(answer.headers['content-encoding'], accept).toBe(coding);
      expect(answer.body.length, accept).toBeLessThan(BODY.length / 3);
      expect(decoded(answer).equals(BODY), accept).toBe(true);
    }
  });

  it('breaks a tie by the configured order', async () => {
    expect((await fetchRaw(sidecar.url('/data'), { 'accept-encoding': 'gzip, deflate, br, zstd' })).headers['content-encoding']).toBe('br');
    expect((await fetchRaw(sidecar.url('/gzip-first/data'), { 'accept-encoding': 'br, gzip' })).headers['content-encoding']).toBe('gzip');
  });

  it('says what it did in the head: no Content-Length or Accept-Ranges, Vary, an ETag of the encoded variant', async () => {
    const answer = await fetchRaw(sidecar.url('/data'), { 'accept-encoding': 'gzip' });
    expect(answer.headers['content-length']).toBeUndefined();
    expect(answer.headers['accept-ranges']).toBeUndefined();
    expect(answer.headers['transfer-encoding']).toBe('chunked');
    expect(answer.headers.vary).toBe('Origin, Accept-Encoding');
    expect(answer.headers.etag).toBe('"v1-gzip"');
    expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
  });

  it('sends identity, with Vary, to a client that accepts no offered coding', async () => {
    for (const headers of [{} as Record<string, string>, { 'accept-encoding': 'identity' }, { 'accept-encoding': 'deflate' }, { 'accept-encoding': '*;q=0' }]) {
      const answer = await fetchRaw(sidecar.url('/data'), headers);
      expect(answer.headers['content-encoding']).toBeUndefined();
      expect(answer.headers['content-length']).toBe(String(BODY.length));
      expect(answer.headers.etag).toBe('"v1"');
      expect(answer.headers.vary).toBe('Origin, Accept-Encoding');
      expect(answer.body.equals(BODY)).toBe(true);
    }
  });

  it('leaves a route with compress: false alone, Vary included', async () => {
    const answer = await fetchRaw(sidecar.url('/plain/data'), { 'accept-encoding': 'gzip, br' });
    expect(answer.headers['content-encoding']).toBeUndefined();
    expect(answer.headers.vary).toBe('Origin');
    expect(answer.body.equals(BODY)).toBe(true);
  });

  it('counts each result and the bytes in and out per coding', async () => {
    const value = (name: string, labels: Record<string, string>) => metricValue(sidecar.admin('/metrics'), name, labels);
    const gzipped = { route: 'app', result: 'gzip' };
    const bytesIn = { route: 'app', algorithm: 'gzip', direction: 'in' };
    const bytesOut = { route: 'app', algorithm: 'gzip', direction: 'out' };
    const before = { count: await value('sidecar_compression_total', gzipped), in: await value('sidecar_compression_bytes_total', bytesIn), out: await value('sidecar_compression_bytes_total', bytesOut) };
    const answer = await fetchRaw(sidecar.url('/data'), { 'accept-encoding': 'gzip' });
    expect(await value('sidecar_compression_total', gzipped)).toBe(before.count + 1);
    expect(await value('sidecar_compression_bytes_total', bytesIn)).toBe(before.in + BODY.length);
    expect(await value('sidecar_compression_bytes_total', bytesOut)).toBe(before.out + answer.body.length);
    expect(await value('sidecar_compression_total', { route: 'app', result: 'not_accepted' })).toBeGreaterThan(0);
  });
});
