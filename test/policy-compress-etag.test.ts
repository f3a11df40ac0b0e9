/**
 * ETags through compression (issue 19, Caddy's rule): the encoded variant
 * gets a strong ETag of its own, a conditional GET with it reaches the
 * upstream as the upstream's own tag and gets a 304 that names the variant
 * again, with Vary; weak ETags and tags the sidecar did not make pass as
 * they are.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { decoded, fetchRaw, textBody } from './helpers/encoded.ts';

const BODY = textBody(8 * 1024);

describe('compress: ETags and conditional requests', () => {
  let upstream: TestServer;
  let sidecar: RunningSidecar;
  /** If-None-Match as the upstream received it, per request. */
  const seen: Array<string | undefined> = [];

  beforeAll(async () => {
    upstream = await startHttpServer((req, res) => {
      const etag = req.url === '/weak' ? 'W/"w1"' : '"v7"';
      const ifNoneMatch = req.headers['if-none-match'];
      seen.push(ifNoneMatch);
      if (ifNoneMatch !== undefined && ifNoneMatch.split(/\s*,\s*/).includes(etag)) {
        res.writeHead(304, { etag, 'cache-control': 'no-cache' });
        return res.end();
      }
      res.writeHead(200, { 'content-type': 'text/html', etag, 'content-length': BODY.length });
      res.end(BODY);
    });
    sidecar = await startSidecar(`${TEST_BASE}
upstreams: { app: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: app, match: { path: / }, upstream: app, compress: {} }
`);
  });
  afterAll(async () => {
    await sidecar?.close();
    await upstream?.close();
  });

  it('gives each encoding its own strong ETag, and the identity answer the upstream one', async () => {
    expect((await fetchRaw(sidecar.url('/page'), { 'accept-encoding': 'gzip' })).headers.etag).toBe('"v7-gzip"');
    expect((await fetchRaw(sidecar.url('/page'), { 'accept-encoding': 'br' })).headers.etag).toBe('"v7-br"');
    expect((await fetchRaw(sidecar.url('/page'))).headers.etag).toBe('"v7"');
  });

  it('answers a conditional GET with the encoded ETag 304, asking the upstream with its own tag', async () => {
    const first = await fetchRaw(sidecar.url('/page'), { 'accept-encoding': 'gzip' });
    const etag = first.headers.etag as string;
    seen.length = 0;
    const again = await fetchRaw(sidecar.url('/page'), { 'accept-encoding': 'gzip', 'if-none-match': etag });
    expect(seen).toEqual(['"v7"']);
    expect(again.status).toBe(304);
    expect(again.headers.etag).toBe('"v7-gzip"');
    expect(again.headers.vary).toBe('Accept-Encoding');
    expect(again.body.length).toBe(0);
  });

  it('maps every tag of a list, leaving tags it did not make alone', async () => {
    seen.length = 0;
    const answer = await fetchRaw(sidecar.url('/page'), { 'accept-encoding': 'br', 'if-none-match': '"other", "v7-br", W/"x-gzip"' });
    expect(seen).toEqual(['"other", "v7", W/"x-gzip"']);
    expect(answer.status).toBe(304);
    expect(answer.headers.etag).toBe('"v7-br"');
  });

  it('answers a tag of an older version with the full, encoded answer', async () => {
    const answer = await fetchRaw(sidecar.url('/page'), { 'accept-encoding': 'gzip', 'if-none-match': '"v6-gzip"' });
    expect(answer.status).toBe(200);
    expect(answer.headers.etag).toBe('"v7-gzip"');
    expect(decoded(answer).equals(BODY)).toBe(true);
  });

  it('keeps a weak ETag as it is: weak comparison already spans encodings', async () => {
    const answer = await fetchRaw(sidecar.url('/weak'), { 'accept-encoding': 'gzip' });
    expect(answer.headers['content-encoding']).toBe('gzip');
    expect(answer.headers.etag).toBe('W/"w1"');
    const again = await fetchRaw(sidecar.url('/weak'), { 'accept-encoding': 'gzip', 'if-none-match': 'W/"w1"' });
    expect(again.status).toBe(304);
    expect(again.headers.etag).toBe('W/"w1"');
  });
});
