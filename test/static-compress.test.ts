/**
 * Static routes with `compress` (issue 19): a file without a precompressed
 * sibling is compressed on the fly; a hot file (one the file cache keeps) is
 * compressed once per coding and the copy cached with it, until the file
 * changes; a larger one streams through an encoder. Precompressed `.zst`
 * siblings are served like `.br` and `.gz`. The encoded answer has its own
 * ETag, a Content-Length when it came from memory, no Accept-Ranges, and
 * Vary; Range and HEAD get the identity file.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { zstdCompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { decoded, fetchRaw, textBody } from './helpers/encoded.ts';
import { metricValue } from './helpers/misbehave.ts';

const SCRIPT = textBody(20 * 1024);
const BIG = textBody(2 * 1024 * 1024);
const SMALL = textBody(300);
const STYLE = textBody(10 * 1024);
const STYLE_ZST = zstdCompressSync(STYLE);
const IMAGE = textBody(8 * 1024);

/** Files are cached once their last change is this old (static-cache.ts DEFAULT_SETTLE_MS), so they are written that long before. */
const SETTLE_MS = 2_100;

describe('static routes compress files on the fly', () => {
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    sidecar = await startSidecar(
      `${TEST_BASE}
ingress:
  listen: 127.0.0.1:0
  routes:
    - name: assets
      match: { path: /static/ }
      static: { root: ./public, precompressed: true, cache: { maxFileSize: 1MiB } }
      compress: { algorithms: [br, gzip], minLength: 1KiB }
`,
      {
        'public/app.js': SCRIPT.toString(),
        'public/big.json': BIG.toString(),
        'public/small.txt': SMALL.toString(),
        'public/style.css': STYLE.toString(),
        'public/logo.png': IMAGE.toString(),
        'public/changing.txt': SCRIPT.toString(),
      },
    );
    writeFileSync(join(sidecar.dir, 'public/style.css.zst'), STYLE_ZST);
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  });
  afterAll(async () => {
    await sidecar?.close();
  });

  const get = (path: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') => fetchRaw(sidecar.url(path), headers, method);
  const compressions = (result: string) => metricValue(sidecar.admin('/metrics'), 'sidecar_compression_total', { route: 'assets', result });

  it('compresses a hot file once per coding, and serves the cached copy after', async () => {
    const before = await compressions('gzip');
    // Different headers that all choose gzip, so the hot-answer memo does not hide the path through the cache.
    for (const accept of ['gzip', 'gzip, deflate', 'deflate, gzip', 'gzip;q=0.9', 'gzip, br;q=0']) {
      const answer = await get('/static/app.js', { 'accept-encoding': accept });
      expect(answer.headers['content-encoding'], accept).toBe('gzip');
      expect(answer.headers['content-length'], accept).toBe(String(answer.body.length));
      expect(answer.headers['accept-ranges'], accept).toBeUndefined();
      expect(answer.headers.vary, accept).toBe('Accept-Encoding');
      expect(decoded(answer).equals(SCRIPT), accept).toBe(true);
    }
    expect(await compressions('gzip')).toBe(before + 1);
  });

  it('gives each coding an ETag of its own, and a 304 for it', async () => {
    const gzip = await get('/static/app.js', { 'accept-encoding': 'gzip' });
    const br = await get('/static/app.js', { 'accept-encoding': 'br' });
    const identity = await get('/static/app.js');
    expect(br.headers['content-encoding']).toBe('br');
    expect(decoded(br).equals(SCRIPT)).toBe(true);
    const tags = new Set([gzip.headers.etag, br.headers.etag, identity.headers.etag]);
    expect(tags.size).toBe(3);
    expect(gzip.headers.etag).toMatch(/-gzip"$/);
    const again = await get('/static/app.js', { 'accept-encoding': 'gzip', 'if-none-match': gzip.headers.etag as string });
    expect(again.status).toBe(304);
    expect(again.headers.etag).toBe(gzip.headers.etag);
    expect(again.headers.vary).toBe('Accept-Encoding');
  });

  it('streams a file too large for the cache through an encoder, every time', async () => {
    const before = await compressions('br');
    for (let i = 0; i < 2; i++) {
      const answer = await get('/static/big.json', { 'accept-encoding': 'br, gzip' });
      expect(answer.headers['content-encoding']).toBe('br');
      expect(answer.headers['content-length']).toBeUndefined();
      expect(answer.headers['transfer-encoding']).toBe('chunked');
      expect(decoded(answer).equals(BIG)).toBe(true);
    }
    expect(await compressions('br')).toBe(before + 2);
  });

  it('answers Range and HEAD with the identity file', async () => {
    const range = await get('/static/app.js', { 'accept-encoding': 'gzip', range: 'bytes=0-9' });
    expect(range.status).toBe(206);
    expect(range.headers['content-encoding']).toBeUndefined();
    expect(range.body.equals(SCRIPT.subarray(0, 10))).toBe(true);
    const head = await get('/static/app.js', { 'accept-encoding': 'gzip' }, 'HEAD');
    expect(head.headers['content-encoding']).toBeUndefined();
    expect(head.headers['content-length']).toBe(String(SCRIPT.length));
    expect(head.headers.vary).toBe('Accept-Encoding');
  });

  it('leaves small files (with Vary) and images (without) as they are', async () => {
    const small = await get('/static/small.txt', { 'accept-encoding': 'gzip' });
    expect(small.headers['content-encoding']).toBeUndefined();
    expect(small.headers.vary).toBe('Accept-Encoding');
    expect(small.body.equals(SMALL)).toBe(true);
    const image = await get('/static/logo.png', { 'accept-encoding': 'gzip' });
    expect(image.headers['content-encoding']).toBeUndefined();
    expect(image.headers.vary).toBe('Accept-Encoding'); // precompressed: true, so a variant might exist
    expect(image.body.equals(IMAGE)).toBe(true);
  });

  it('serves a precompressed .zst sibling to a client that takes zstd, and compresses on the fly for one that does not', async () => {
    const zstd = await get('/static/style.css', { 'accept-encoding': 'zstd' });
    expect(zstd.headers['content-encoding']).toBe('zstd');
    expect(zstd.body.equals(STYLE_ZST)).toBe(true);
    const gzip = await get('/static/style.css', { 'accept-encoding': 'gzip' });
    expect(gzip.headers['content-encoding']).toBe('gzip');
    expect(decoded(gzip).equals(STYLE)).toBe(true);
  });

  it('compresses a changed file again: the cached copy goes with the old version', async () => {
    const first = await get('/static/changing.txt', { 'accept-encoding': 'gzip' });
    expect(first.headers['content-encoding']).toBe('gzip');
    expect(decoded(first).equals(SCRIPT)).toBe(true);
    const changed = Buffer.from(`${SCRIPT.toString()}\nmore`);
    writeFileSync(join(sidecar.dir, 'public/changing.txt'), changed);
    // The path lookup is trusted for cache.revalidate (250 ms): wait it out, bounded.
    let answer = first;
    for (let i = 0; i < 40 && decoded(answer).equals(SCRIPT); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      answer = await get('/static/changing.txt', { 'accept-encoding': 'gzip' });
    }
    expect(answer.headers['content-encoding']).toBe('gzip');
    expect(decoded(answer).equals(changed)).toBe(true);
    expect(answer.headers.etag).not.toBe(first.headers.etag);
  });
});

describe('static routes without compress', () => {
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    sidecar = await startSidecar(
      `${TEST_BASE}
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: assets, match: { path: /static/ }, static: { root: ./public } }
`,
      { 'public/app.js': SCRIPT.toString() },
    );
  });
  afterAll(async () => {
    await sidecar?.close();
  });

  it('send files as they are, without Vary', async () => {
    const answer = await fetchRaw(sidecar.url('/static/app.js'), { 'accept-encoding': 'gzip, br' });
    expect(answer.headers['content-encoding']).toBeUndefined();
    expect(answer.headers.vary).toBeUndefined();
    expect(answer.body.equals(SCRIPT)).toBe(true);
  });
});
