/**
 * Static offload (issue 5): a real node:http server wrapping StaticHandler.handle()
 * on 127.0.0.1:0, a real client. The "send's own test cases" block ports the
 * conditional-GET and Range cases of pillarjs/send (test/send.js) one for one,
 * with send's fixtures (name.txt = "tobi", nums.txt = "123456789").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { createStaticHandler, type StaticHandler, type StaticHandlerOptions } from '../src/ingress/static.ts';
import { ResolveCache, type LookupWindow } from '../src/ingress/static-resolve.ts';
import type { StaticConfig } from '../src/config/schema.ts';
import { staticBytesTotal, staticResponsesTotal } from '../src/observe/metrics.ts';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

interface Served {
  port: number;
  handler: StaticHandler;
  close(): Promise<void>;
}

const BIG_SIZE = 16 * 1024 * 1024;
let base: string;
let root: string;
const servers: Served[] = [];

function write(rel: string, content: string | Buffer): string {
  const file = path.join(root, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return file;
}

function config(overrides: Partial<StaticConfig> = {}): StaticConfig {
  return {
    root,
    maxAge: 3_600_000,
    immutable: false,
    precompressed: true,
    index: 'index.html',
    fallthrough: false,
    dotfiles: 'deny',
    // Every request looks at the file: these tests change files and expect the change at once.
    cache: { maxBytes: 1024 * 1024, maxFileSize: 64 * 1024, revalidate: 0 },
    ...overrides,
  };
}

/** A server whose misses answer 299 `x-miss` (and prove the handler left res untouched). */
async function serve(overrides: Partial<StaticConfig> = {}, opts: { prefix?: string; name?: string } & StaticHandlerOptions = {}): Promise<Served> {
  const { prefix = '/static/', name = 'assets', ...options } = opts;
  const handler = createStaticHandler({ name, prefix, config: config(overrides) }, options);
  const server = http.createServer((req, res) => {
    // The request's id, as the ingress listener hands it over (its Exchange), when the client sent one.
    const reqId = req.headers['x-request-id'];
    Promise.resolve(handler.handle(req, res, { bytesOut: 0, reqId: typeof reqId === 'string' ? reqId : undefined })).then(
      (result) => {
        if (result !== 'miss') return;
        res.writeHead(299, { 'x-miss': res.headersSent ? 'dirty' : 'clean' });
        res.end('MISS');
      },
      (err: unknown) => res.destroy(err as Error),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const served: Served = {
    port: (server.address() as AddressInfo).port,
    handler,
    close: () =>
      new Promise<void>((resolve) => {
        handler.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  servers.push(served);
  return served;
}

function get(port: number, target: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: target, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end();
  });
}

const text = (reply: Reply): string => reply.body.toString('utf8');
const DATE = /^\w{3}, \d+ \w+ \d+ \d+:\d+:\d+ GMT$/;

let main: Served;

beforeAll(async () => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'sidecar-static-'));
  root = path.join(base, 'public');
  write('name.txt', 'tobi');
  write('nums.txt', '123456789');
  write('empty.txt', '');
  write('some thing.txt', 'hey');
  write('do..ts.txt', '...');
  write('no_ext', 'raw');
  write('page.html', '<p>hi</p>');
  write('data.json', '{}');
  write('pic.png', Buffer.from([0x89, 0x50, 0x4e, 0x47]));
  write('app.js', "console.log('identity')");
  write('app.js.br', 'BROTLI-BYTES');
  write('app.js.gz', 'GZIP-BYTES');
  write('style.css', 'body{}');
  write('style.css.gz', 'GZ-CSS');
  write('pets/index.html', 'pets index');
  write('snow \u2603/index.html', 'snow');
  write('noindex/file.txt', 'x');
  write('nested/index.html/inner.txt', 'folder named like the index');
  write('index.html', 'root index');
  write('.hidden.txt', 'hidden');
  write('.mine/name.txt', 'in a dot folder');
  fs.symlinkSync('.hidden.txt', path.join(root, 'to-hidden.txt'));
  const big = Buffer.alloc(BIG_SIZE);
  for (let i = 0; i < big.length; i += 4096) big.write(`block ${i / 4096}\n`, i);
  write('big.bin', big);
  main = await serve();
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  fs.rmSync(base, { recursive: true, force: true });
});

describe('serving a file', () => {
  it('sends the bytes with length, type, strong ETag, Last-Modified, Accept-Ranges and Cache-Control', async () => {
    const r = await get(main.port, '/static/name.txt');
    expect(r.status).toBe(200);
    expect(text(r)).toBe('tobi');
    expect(r.headers['content-length']).toBe('4');
    expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(r.headers.etag).toMatch(/^"[^"]+"$/); // strong: no W/
    expect(r.headers['last-modified']).toMatch(DATE);
    expect(r.headers['accept-ranges']).toBe('bytes');
    expect(r.headers['cache-control']).toBe('public, max-age=3600');
    expect(r.headers['x-sidecar-error']).toBeUndefined();
  });

  it('HEAD gives the same head and no body', async () => {
    const full = await get(main.port, '/static/name.txt');
    const head = await get(main.port, '/static/name.txt', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(head.headers['content-length']).toBe('4');
    expect(head.headers.etag).toBe(full.headers.etag);
  });

  it('streams a zero-length file', async () => {
    const r = await get(main.port, '/static/empty.txt');
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe('0');
    expect(r.body.length).toBe(0);
  });

  it('decodes the path once: spaces, dots in names, unicode folders', async () => {
    expect(text(await get(main.port, '/static/some%20thing.txt'))).toBe('hey');
    expect(text(await get(main.port, '/static/do..ts.txt'))).toBe('...');
    expect(text(await get(main.port, '/static/snow%20%E2%98%83/'))).toBe('snow');
  });

  it('takes Content-Type from the extension, charset=utf-8 for text, octet-stream when unknown', async () => {
    const types: Array<[string, string]> = [
      ['/static/page.html', 'text/html; charset=utf-8'],
      ['/static/app.js', 'text/javascript; charset=utf-8'],
      ['/static/style.css', 'text/css; charset=utf-8'],
      ['/static/data.json', 'application/json; charset=utf-8'],
      ['/static/pic.png', 'image/png'],
      ['/static/no_ext', 'application/octet-stream'],
    ];
    for (const [target, type] of types) expect((await get(main.port, target)).headers['content-type'], target).toBe(type);
  });

  it('accepts an absolute-form request target', async () => {
    const r = await get(main.port, `http://127.0.0.1:${main.port}/static/name.txt?x=1`);
    expect(r.status).toBe(200);
    expect(text(r)).toBe('tobi');
  });

  it('streams a large file whole, and any range of it', async () => {
    const expected = fs.readFileSync(path.join(root, 'big.bin'));
    const r = await get(main.port, '/static/big.bin');
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe(String(BIG_SIZE));
    expect(r.body.equals(expected)).toBe(true);
    const part = await get(main.port, '/static/big.bin', { range: 'bytes=5000000-5100000' });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 5000000-5100000/${BIG_SIZE}`);
    expect(part.body.equals(expected.subarray(5000000, 5100001))).toBe(true);
  });
});

describe('methods', () => {
  it('answers 405 with Allow: GET, HEAD and x-sidecar-error', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
      const r = await get(main.port, '/static/name.txt', {}, method);
      expect(r.status, method).toBe(405);
      expect(r.headers.allow).toBe('GET, HEAD');
      expect(r.headers['x-sidecar-error']).toBe('method_not_allowed');
      expect(JSON.parse(text(r))).toMatchObject({ error: 'method_not_allowed' });
    }
  });

  it('with fallthrough, other methods go on to the next route untouched', async () => {
    const s = await serve({ fallthrough: true });
    const r = await get(s.port, '/static/name.txt', {}, 'POST');
    expect(r.status).toBe(299);
    expect(r.headers['x-miss']).toBe('clean');
  });
});

// pillarjs/send test/send.js, "with conditional-GET" and "with Range request", case for case.
describe("send's own test cases", () => {
  const first = () => get(main.port, '/static/name.txt');
  const nums = () => get(main.port, '/static/nums.txt');

  it('304 removes the Content headers and keeps the validators', async () => {
    const { headers } = await first();
    const r = await get(main.port, '/static/name.txt', { 'if-none-match': headers.etag! });
    expect(r.status).toBe(304);
    expect(r.body.length).toBe(0);
    expect(r.headers['content-type']).toBeUndefined();
    expect(r.headers['content-length']).toBeUndefined();
    expect(r.headers.etag).toBe(headers.etag);
    expect(r.headers['cache-control']).toBe('public, max-age=3600');
    expect(r.headers.vary).toBe('Accept-Encoding');
  });

  it('If-Match: 200 when "*"', async () => {
    expect((await get(main.port, '/static/name.txt', { 'if-match': '*' })).status).toBe(200);
  });
  it('If-Match: 412 when ETag unmatched', async () => {
    const r = await get(main.port, '/static/name.txt', { 'if-match': ' "foo",, "bar" ,' });
    expect(r.status).toBe(412);
    expect(JSON.parse(text(r))).toMatchObject({ error: 'precondition_failed' });
  });
  it('If-Match: 200 when ETag matched', async () => {
    const { headers } = await first();
    expect((await get(main.port, '/static/name.txt', { 'if-match': `"foo", "bar", ${headers.etag}` })).status).toBe(200);
  });
  it('If-Match: a weak tag never matches (strong comparison, RFC 9110 13.1.1)', async () => {
    const { headers } = await first();
    expect((await get(main.port, '/static/name.txt', { 'if-match': `W/${headers.etag}` })).status).toBe(412);
  });
  it('If-Modified-Since: 304 when unmodified', async () => {
    const { headers } = await first();
    expect((await get(main.port, '/static/name.txt', { 'if-modified-since': headers['last-modified']! })).status).toBe(304);
  });
  it('If-Modified-Since: 200 when modified', async () => {
    const { headers } = await first();
    const date = new Date(Date.parse(headers['last-modified']!) - 60_000).toUTCString();
    const r = await get(main.port, '/static/name.txt', { 'if-modified-since': date });
    expect(r.status).toBe(200);
    expect(text(r)).toBe('tobi');
  });
  it('If-None-Match: 304 when ETag matched', async () => {
    const { headers } = await first();
    expect((await get(main.port, '/static/name.txt', { 'if-none-match': headers.etag! })).status).toBe(304);
  });
  it('If-None-Match: 200 when ETag unmatched', async () => {
    const r = await get(main.port, '/static/name.txt', { 'if-none-match': '"123"' });
    expect(r.status).toBe(200);
    expect(text(r)).toBe('tobi');
  });
  it('If-None-Match wins over If-Modified-Since', async () => {
    const { headers } = await first();
    const r = await get(main.port, '/static/name.txt', { 'if-none-match': '"123"', 'if-modified-since': headers['last-modified']! });
    expect(r.status).toBe(200);
  });
  it('If-Unmodified-Since: 200 when unmodified', async () => {
    const { headers } = await first();
    expect((await get(main.port, '/static/name.txt', { 'if-unmodified-since': headers['last-modified']! })).status).toBe(200);
  });
  it('If-Unmodified-Since: 412 when modified', async () => {
    const { headers } = await first();
    const date = new Date(Date.parse(headers['last-modified']!) - 60_000).toUTCString();
    expect((await get(main.port, '/static/name.txt', { 'if-unmodified-since': date })).status).toBe(412);
  });
  it('If-Unmodified-Since: 200 when invalid date', async () => {
    expect((await get(main.port, '/static/name.txt', { 'if-unmodified-since': 'foo' })).status).toBe(200);
  });

  const ranges: Array<[string, number, string, string?]> = [
    ['bytes=0-4', 206, '12345', 'bytes 0-4/9'],
    ['items=0-4', 200, '123456789'], // non-byte ranges are ignored
    ['bytes=0-0', 206, '1', 'bytes 0-0/9'], // inclusive
    ['bytes=2-5', 206, '3456', 'bytes 2-5/9'],
    ['bytes=-3', 206, '789', 'bytes 6-8/9'], // suffix
    ['bytes=3-', 206, '456789', 'bytes 3-8/9'],
    ['bytes=2-3', 206, '34', 'bytes 2-3/9'],
    ['bytes=2-50', 206, '3456789', 'bytes 2-8/9'], // end clamped to the length
    ['asdf', 200, '123456789'], // syntactically invalid
    ['bytes=1-1,3-', 200, '123456789'], // several ranges: the whole file
    ['bytes=1-2,3-5', 206, '23456', 'bytes 1-5/9'], // combined into one
  ];
  for (const [range, status, body, contentRange] of ranges) {
    it(`Range ${range} -> ${status} ${body}`, async () => {
      const r = await get(main.port, '/static/nums.txt', { range });
      expect(r.status).toBe(status);
      expect(text(r)).toBe(body);
      expect(r.headers['content-length']).toBe(String(body.length));
      expect(r.headers['content-range']).toBe(contentRange);
    });
  }
  it('Range: 416 with bytes */size when the first byte is past the end', async () => {
    const r = await get(main.port, '/static/nums.txt', { range: 'bytes=9-50' });
    expect(r.status).toBe(416);
    expect(r.headers['content-range']).toBe('bytes */9');
  });
  it('If-Range: parts when the ETag is unchanged', async () => {
    const { headers } = await nums();
    const r = await get(main.port, '/static/nums.txt', { 'if-range': headers.etag!, range: 'bytes=0-0' });
    expect(r.status).toBe(206);
    expect(text(r)).toBe('1');
  });
  it('If-Range: 200 when the ETag changed', async () => {
    const { headers } = await nums();
    const etag = headers.etag!.replace(/"(.)/, '"0$1');
    const r = await get(main.port, '/static/nums.txt', { 'if-range': etag, range: 'bytes=0-0' });
    expect(r.status).toBe(200);
    expect(text(r)).toBe('123456789');
  });
  it('If-Range: parts when the date is unchanged', async () => {
    const { headers } = await nums();
    const r = await get(main.port, '/static/nums.txt', { 'if-range': headers['last-modified']!, range: 'bytes=0-0' });
    expect(r.status).toBe(206);
    expect(text(r)).toBe('1');
  });
  it('If-Range: 200 when the date changed', async () => {
    const { headers } = await nums();
    const date = new Date(Date.parse(headers['last-modified']!) - 20_000).toUTCString();
    const r = await get(main.port, '/static/nums.txt', { 'if-range': date, range: 'bytes=0-0' });
    expect(r.status).toBe(200);
    expect(text(r)).toBe('123456789');
  });
  it('If-Range: 200 when invalid', async () => {
    const r = await get(main.port, '/static/nums.txt', { 'if-range': 'foo', range: 'bytes=0-0' });
    expect(r.status).toBe(200);
    expect(text(r)).toBe('123456789');
  });
  it('Range on HEAD gives the 206 head without a body', async () => {
    const r = await get(main.port, '/static/nums.txt', { range: 'bytes=0-4' }, 'HEAD');
    expect(r.status).toBe(206);
    expect(r.headers['content-length']).toBe('5');
    expect(r.body.length).toBe(0);
  });
});

describe('precompressed variants', () => {
  it('prefers br, then gzip, with Content-Encoding, Vary and an ETag per encoding', async () => {
    const br = await get(main.port, '/static/app.js', { 'accept-encoding': 'gzip, deflate, br' });
    const gz = await get(main.port, '/static/app.js', { 'accept-encoding': 'gzip' });
    const id = await get(main.port, '/static/app.js');
    expect([text(br), br.headers['content-encoding']]).toEqual(['BROTLI-BYTES', 'br']);
    expect([text(gz), gz.headers['content-encoding']]).toEqual(['GZIP-BYTES', 'gzip']);
    expect([text(id), id.headers['content-encoding']]).toEqual(["console.log('identity')", undefined]);
    for (const r of [br, gz, id]) {
      expect(r.headers.vary).toBe('Accept-Encoding');
      expect(r.headers['content-type']).toBe('text/javascript; charset=utf-8');
    }
    expect(new Set([br.headers.etag, gz.headers.etag, id.headers.etag]).size).toBe(3);
  });

  it('honours q-values and falls back to the variant that exists', async () => {
    const r1 = await get(main.port, '/static/app.js', { 'accept-encoding': 'br;q=0, gzip' });
    expect(r1.headers['content-encoding']).toBe('gzip');
    const r2 = await get(main.port, '/static/app.js', { 'accept-encoding': 'br;q=0.5, gzip;q=0.9' });
    expect(r2.headers['content-encoding']).toBe('gzip');
    const r3 = await get(main.port, '/static/app.js', { 'accept-encoding': '*' });
    expect(r3.headers['content-encoding']).toBe('br');
    const css = await get(main.port, '/static/style.css', { 'accept-encoding': 'br, gzip' });
    expect([text(css), css.headers['content-encoding'], css.headers['content-type']]).toEqual(['GZ-CSS', 'gzip', 'text/css; charset=utf-8']);
    const none = await get(main.port, '/static/name.txt', { 'accept-encoding': 'br, gzip' });
    expect([text(none), none.headers['content-encoding']]).toEqual(['tobi', undefined]);
  });

  it('an identity ETag does not revalidate the br variant', async () => {
    const id = await get(main.port, '/static/app.js');
    const r = await get(main.port, '/static/app.js', { 'accept-encoding': 'br', 'if-none-match': id.headers.etag! });
    expect(r.status).toBe(200);
    expect(r.headers['content-encoding']).toBe('br');
    const again = await get(main.port, '/static/app.js', { 'accept-encoding': 'br', 'if-none-match': r.headers.etag! });
    expect(again.status).toBe(304);
  });

  it('ranges apply to the encoded bytes', async () => {
    const r = await get(main.port, '/static/app.js', { 'accept-encoding': 'br', range: 'bytes=0-5' });
    expect([r.status, text(r), r.headers['content-range']]).toEqual([206, 'BROTLI', 'bytes 0-5/12']);
  });

  it('precompressed: false serves identity and sends no Vary', async () => {
    const s = await serve({ precompressed: false });
    const r = await get(s.port, '/static/app.js', { 'accept-encoding': 'br, gzip' });
    expect(text(r)).toBe("console.log('identity')");
    expect(r.headers['content-encoding']).toBeUndefined();
    expect(r.headers.vary).toBeUndefined();
  });
});

describe('Cache-Control', () => {
  it('maxAge 0 is no-cache; immutable is added; max-age is capped at one year', async () => {
    const zero = await serve({ maxAge: 0, immutable: true });
    expect((await get(zero.port, '/static/name.txt')).headers['cache-control']).toBe('no-cache');
    const imm = await serve({ maxAge: 86_400_000, immutable: true });
    expect((await get(imm.port, '/static/name.txt')).headers['cache-control']).toBe('public, max-age=86400, immutable');
    const long = await serve({ maxAge: 2 * 365 * 86_400_000 });
    expect((await get(long.port, '/static/name.txt')).headers['cache-control']).toBe('public, max-age=31536000');
    const frac = await serve({ maxAge: 1_500 });
    expect((await get(frac.port, '/static/name.txt')).headers['cache-control']).toBe('public, max-age=1');
  });
});

describe('folders and index', () => {
  it('serves the index of a folder with a trailing slash', async () => {
    const r = await get(main.port, '/static/pets/');
    expect([r.status, text(r), r.headers['content-type']]).toEqual([200, 'pets index', 'text/html; charset=utf-8']);
    expect(text(await get(main.port, '/static/'))).toBe('root index');
  });

  it('redirects a folder without its slash (301), keeping the query string', async () => {
    const r = await get(main.port, '/static/pets?a=1&b=2');
    expect(r.status).toBe(301);
    expect(r.headers.location).toBe('/static/pets/?a=1&b=2');
    const rootRedirect = await get(main.port, '/static');
    expect([rootRedirect.status, rootRedirect.headers.location]).toEqual([301, '/static/']);
  });

  it('never redirects to a protocol-relative location', async () => {
    const s = await serve({}, { prefix: '/' });
    const r = await get(s.port, '//pets');
    expect(r.status).toBe(301);
    expect(r.headers.location).toBe('/pets/');
  });

  it('404 when the folder has no index, the index is a folder, or index is false', async () => {
    expect((await get(main.port, '/static/noindex/')).status).toBe(404);
    expect((await get(main.port, '/static/noindex')).status).toBe(404);
    expect((await get(main.port, '/static/nested/')).status).toBe(404);
    const off = await serve({ index: false });
    expect((await get(off.port, '/static/pets/')).status).toBe(404);
    expect((await get(off.port, '/static/pets')).status).toBe(404);
  });

  it('a file with a trailing slash is not found', async () => {
    expect((await get(main.port, '/static/name.txt/')).status).toBe(404);
  });
});

describe('misses', () => {
  it('answers a plain JSON 404 without x-sidecar-error', async () => {
    const r = await get(main.port, '/static/meow');
    expect(r.status).toBe(404);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['x-sidecar-error']).toBeUndefined();
    expect(JSON.parse(text(r))).toMatchObject({ error: 'not_found' });
  });

  it('a root that does not exist answers 404, not 500', async () => {
    const s = await serve({ root: path.join(base, 'no-such-root') });
    expect((await get(s.port, '/static/name.txt')).status).toBe(404);
    expect((await get(s.port, '/static/')).status).toBe(404);
  });

  it('treats ENAMETOOLONG as 404', async () => {
    expect((await get(main.port, `/static/${'foobar'.repeat(100)}`)).status).toBe(404);
  });

  it('with fallthrough, a miss is handed on without touching the response', async () => {
    const s = await serve({ fallthrough: true });
    for (const target of ['/static/meow', '/static/noindex/', '/static/.hidden.txt', '/static/../name.txt', '/elsewhere']) {
      const r = await get(s.port, target);
      expect([r.status, r.headers['x-miss']], target).toEqual([299, 'clean']);
    }
    expect(text(await get(s.port, '/static/name.txt'))).toBe('tobi');
  });
});

describe('dotfiles', () => {
  it('are hidden (404) by default, in files and folders, through symlinks too', async () => {
    for (const target of ['/static/.hidden.txt', '/static/.mine/name.txt', '/static/.mine/', '/static/.mine', '/static/%2ehidden.txt', '/static/to-hidden.txt', '/static/.nothing']) {
      expect((await get(main.port, target)).status, target).toBe(404);
    }
  });

  it('are served with dotfiles: allow', async () => {
    const s = await serve({ dotfiles: 'allow' });
    expect(text(await get(s.port, '/static/.hidden.txt'))).toBe('hidden');
    expect(text(await get(s.port, '/static/.mine/name.txt'))).toBe('in a dot folder');
    expect(text(await get(s.port, '/static/to-hidden.txt'))).toBe('hidden');
  });
});

describe('malformed requests', () => {
  it('answers 400 bad_request for malformed percent-encoding and NUL bytes', async () => {
    for (const target of ['/static/some%99thing.txt', '/static/%', '/static/%zz', '/static/some%00thing.txt', '/static/%c0%ae%c0%ae/name.txt']) {
      const r = await get(main.port, target);
      expect(r.status, target).toBe(400);
      expect(r.headers['x-sidecar-error']).toBe('bad_request');
    }
  });
});

describe('memory cache', () => {
  it('serves small files from memory and streams large ones', async () => {
    const s = await serve({}, { cacheSettleMs: 0 });
    write('cached.txt', 'cached body');
    expect(text(await get(s.port, '/static/cached.txt'))).toBe('cached body');
    const before = s.handler.cacheStats();
    expect(text(await get(s.port, '/static/cached.txt'))).toBe('cached body');
    const after = s.handler.cacheStats();
    expect(after.hits).toBe(before.hits + 1);
    await get(s.port, '/static/big.bin', { range: 'bytes=0-0' });
    expect(s.handler.cacheStats().bytes).toBe(after.bytes); // over maxFileSize: never kept
  });

  it('stays within maxBytes and evicts the least recently used file', async () => {
    const s = await serve({ cache: { maxBytes: 10, maxFileSize: 8, revalidate: 0 } }, { cacheSettleMs: 0 });
    write('lru/a.txt', 'aaaaa');
    write('lru/b.txt', 'bbbbb');
    write('lru/c.txt', 'ccccc');
    for (const name of ['a', 'b', 'c']) await get(s.port, `/static/lru/${name}.txt`);
    let stats = s.handler.cacheStats();
    expect(stats.bytes).toBeLessThanOrEqual(10);
    expect(stats.entries).toBe(2);
    const hits = stats.hits;
    expect(text(await get(s.port, '/static/lru/c.txt'))).toBe('ccccc');
    expect(s.handler.cacheStats().hits).toBe(hits + 1);
    expect(text(await get(s.port, '/static/lru/a.txt'))).toBe('aaaaa'); // evicted: read again
    stats = s.handler.cacheStats();
    expect(stats.hits).toBe(hits + 1);
    expect(stats.bytes).toBeLessThanOrEqual(10);
  });

  it('a file changed on disk is served fresh, with a new ETag', async () => {
    const s = await serve({}, { cacheSettleMs: 0 });
    write('change.txt', 'version one');
    const one = await get(s.port, '/static/change.txt');
    await get(s.port, '/static/change.txt');
    write('change.txt', 'version two, longer');
    const two = await get(s.port, '/static/change.txt');
    expect(text(one)).toBe('version one');
    expect(text(two)).toBe('version two, longer');
    expect(two.headers.etag).not.toBe(one.headers.etag);
    const stale = await get(s.port, '/static/change.txt', { 'if-none-match': one.headers.etag! });
    expect(stale.status).toBe(200);
  });

  it('with a revalidate window, a changed file is served fresh once the window has passed', async () => {
    const s = await serve({ cache: { maxBytes: 1024 * 1024, maxFileSize: 64 * 1024, revalidate: 200 } }, { cacheSettleMs: 0 });
    write('window.txt', 'before');
    expect(text(await get(s.port, '/static/window.txt'))).toBe('before');
    write('window.txt', 'after the change');
    let seen = '';
    for (let i = 0; i < 40 && seen !== 'after the change'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      seen = text(await get(s.port, '/static/window.txt'));
    }
    expect(seen).toBe('after the change');
    // A file created after a miss was remembered shows up too.
    expect((await get(s.port, '/static/later.txt')).status).toBe(404);
    write('later.txt', 'new');
    let status = 0;
    for (let i = 0; i < 40 && status !== 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      status = (await get(s.port, '/static/later.txt')).status;
    }
    expect(status).toBe(200);
  });

  it('an atomic replace with the same size and mtime is still seen (inode check)', async () => {
    const s = await serve({}, { cacheSettleMs: 0 });
    const file = write('swap.txt', 'AAAA');
    await get(s.port, '/static/swap.txt');
    expect(text(await get(s.port, '/static/swap.txt'))).toBe('AAAA');
    const { mtime } = fs.statSync(file);
    const tmp = path.join(root, 'swap.tmp');
    fs.writeFileSync(tmp, 'BBBB');
    fs.utimesSync(tmp, mtime, mtime);
    fs.renameSync(tmp, file);
    expect(text(await get(s.port, '/static/swap.txt'))).toBe('BBBB');
  });

  it('a freshly written file is not cached, so a same-size rewrite is never served stale', async () => {
    const s = await serve(); // default settle time
    write('young.txt', 'first');
    expect(text(await get(s.port, '/static/young.txt'))).toBe('first');
    write('young.txt', 'again');
    expect(text(await get(s.port, '/static/young.txt'))).toBe('again');
    expect(s.handler.cacheStats().entries).toBe(0);
  });

  it('close() drops the cache', async () => {
    const s = await serve({}, { cacheSettleMs: 0 });
    await get(s.port, '/static/name.txt');
    expect(s.handler.cacheStats().entries).toBe(1);
    s.handler.close();
    expect(s.handler.cacheStats().entries).toBe(0);
  });
});

describe('hot answers (static-hot.ts): a plain GET answered again from memory', () => {
  // A long window and files old enough to cache: every repeated plain GET below takes the hot path.
  const serveHot = (cache: Partial<StaticConfig['cache']> = {}): Promise<Served> =>
    serve({ cache: { maxBytes: 1024 * 1024, maxFileSize: 64 * 1024, revalidate: 60_000, ...cache } }, { cacheSettleMs: 0 });

  it('gives the same head and body again, with each request its own x-request-id', async () => {
    const s = await serveHot();
    const first = await get(s.port, '/static/name.txt', { 'x-request-id': 'one' });
    const hits = s.handler.cacheStats().hits;
    const second = await get(s.port, '/static/name.txt', { 'x-request-id': 'two' });
    const third = await get(s.port, '/static/name.txt');
    expect(s.handler.cacheStats().hits).toBe(hits + 2);
    expect([first.headers['x-request-id'], second.headers['x-request-id'], third.headers['x-request-id']]).toEqual(['one', 'two', undefined]);
    for (const r of [second, third]) {
      expect([r.status, text(r)]).toEqual([200, 'tobi']);
      const { date: _date, 'x-request-id': _id, ...head } = r.headers;
      const { date: _firstDate, 'x-request-id': _firstId, ...firstHead } = first.headers;
      expect(head).toEqual(firstHead);
    }
  });

  it('never answers a request the full path would answer otherwise: Range, validators, HEAD', async () => {
    const s = await serveHot();
    const full = await get(s.port, '/static/nums.txt');
    await get(s.port, '/static/nums.txt');
    const etag = String(full.headers.etag);
    const part = await get(s.port, '/static/nums.txt', { range: 'bytes=1-3' });
    expect([part.status, text(part), part.headers['content-range']]).toEqual([206, '234', 'bytes 1-3/9']);
    expect((await get(s.port, '/static/nums.txt', { 'if-none-match': etag })).status).toBe(304);
    expect((await get(s.port, '/static/nums.txt', { 'if-modified-since': String(full.headers['last-modified']) })).status).toBe(304);
    expect((await get(s.port, '/static/nums.txt', { 'if-match': '"other"' })).status).toBe(412);
    const head = await get(s.port, '/static/nums.txt', {}, 'HEAD');
    expect([head.status, head.body.length, head.headers['content-length']]).toEqual([200, 0, '9']);
    expect((await get(s.port, '/static/nums.txt', {}, 'POST')).status).toBe(405);
  });

  it('sends every byte value exactly, whole and in ranges (small files are kept as latin1 strings)', async () => {
    const s = await serveHot();
    const bytes = Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7) % 256));
    write('bytes.bin', bytes);
    for (let i = 0; i < 3; i++) expect((await get(s.port, '/static/bytes.bin')).body.equals(bytes)).toBe(true);
    const part = await get(s.port, '/static/bytes.bin', { range: 'bytes=100-355' });
    expect([part.status, part.body.equals(bytes.subarray(100, 356))]).toEqual([206, true]);
  });

  it('follows Accept-Encoding: each request gets the variant it accepts', async () => {
    const s = await serveHot();
    const sequence: Array<[string | undefined, string]> = [
      ['br', 'BROTLI-BYTES'],
      ['br', 'BROTLI-BYTES'],
      ['gzip', 'GZIP-BYTES'],
      [undefined, "console.log('identity')"],
      [undefined, "console.log('identity')"],
      ['br', 'BROTLI-BYTES'],
      ['gzip, br;q=0', 'GZIP-BYTES'],
    ];
    for (const [accept, body] of sequence) {
      const r = await get(s.port, '/static/app.js', accept === undefined ? {} : { 'accept-encoding': accept });
      expect([accept, text(r)]).toEqual([accept, body]);
    }
  });

  it('a file evicted from the cache is read again', async () => {
    const s = await serveHot({ maxBytes: 10, maxFileSize: 8 });
    write('hot-lru/a.txt', 'aaaaa');
    write('hot-lru/b.txt', 'bbbbb');
    write('hot-lru/c.txt', 'ccccc');
    for (const name of ['a', 'b', 'c']) await get(s.port, `/static/hot-lru/${name}.txt`);
    const misses = s.handler.cacheStats().misses;
    expect(text(await get(s.port, '/static/hot-lru/a.txt'))).toBe('aaaaa');
    expect(s.handler.cacheStats().misses).toBe(misses + 1);
  });

  it('a variant created after a miss was remembered is served once the window has passed', async () => {
    const s = await serveHot({ revalidate: 200 });
    write('late.js', 'identity');
    await get(s.port, '/static/late.js', { 'accept-encoding': 'br' });
    expect(text(await get(s.port, '/static/late.js', { 'accept-encoding': 'br' }))).toBe('identity');
    write('late.js.br', 'BR');
    let seen = '';
    for (let i = 0; i < 40 && seen !== 'BR'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      seen = text(await get(s.port, '/static/late.js', { 'accept-encoding': 'br' }));
    }
    expect(seen).toBe('BR');
  });

  it('lasts only as long as the oldest lookup it rests on', async () => {
    write('window/a.txt', 'a');
    write('window/b.txt', 'b');
    const paths = new ResolveCache(root, 'deny', 60_000);
    const first: LookupWindow = { until: Infinity };
    await paths.resolve(path.join(root, 'window/a.txt'), first);
    expect(first.until).toBeGreaterThan(performance.now());
    await new Promise((resolve) => setTimeout(resolve, 20));
    const second: LookupWindow = { until: Infinity };
    await paths.resolve(path.join(root, 'window/b.txt'), second);
    const bAlone = second.until;
    await paths.resolve(path.join(root, 'window/a.txt'), second);
    expect(second.until).toBe(first.until);
    expect(second.until).toBeLessThan(bAlone);
    // Nothing remembered (revalidate: 0): nothing may be reused.
    const none: LookupWindow = { until: Infinity };
    await new ResolveCache(root, 'deny', 0).resolve(path.join(root, 'window/a.txt'), none);
    expect(none.until).toBeLessThanOrEqual(performance.now());
  });
});

describe('streaming', () => {
  const openCount = (file: string): number => {
    let n = 0;
    for (const fd of fs.readdirSync('/proc/self/fd')) {
      try {
        if (fs.readlinkSync(`/proc/self/fd/${fd}`) === file) n++;
      } catch {
        // closed while listing
      }
    }
    return n;
  };
  const until = async (check: () => boolean): Promise<boolean> => {
    for (let i = 0; i < 200; i++) {
      if (check()) return true;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return check();
  };

  it('closes the file when the client goes away mid-body (counts its descriptors in /proc)', async () => {
    const file = fs.realpathSync(path.join(root, 'big.bin'));
    const req = http.get({ host: '127.0.0.1', port: main.port, path: '/static/big.bin', agent: false });
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      req.on('response', resolve);
      req.on('error', reject);
    });
    expect(res.statusCode).toBe(200);
    res.pause(); // backpressure holds the server mid-file
    expect(await until(() => openCount(file) === 1)).toBe(true);
    req.on('error', () => {});
    res.on('error', () => {});
    req.destroy();
    expect(await until(() => openCount(file) === 0)).toBe(true);
  });
});

describe('metrics', () => {
  it('counts responses by route and code, and body bytes', async () => {
    const s = await serve({}, { name: 'metrics-route' });
    const value = async (metric: typeof staticResponsesTotal | typeof staticBytesTotal, labels: Record<string, string>) =>
      (await metric.counter.get()).values.find((v) => {
        const have = v.labels as Record<string, string | number | undefined>;
        return Object.entries(labels).every(([k, val]) => have[k] === val);
      })?.value ?? 0;
    await get(s.port, '/static/name.txt');
    await get(s.port, '/static/nums.txt', { range: 'bytes=0-1' });
    await get(s.port, '/static/missing');
    await get(s.port, '/static/big.bin');
    expect(await value(staticResponsesTotal, { route: 'metrics-route', code: '200' })).toBe(2);
    expect(await value(staticResponsesTotal, { route: 'metrics-route', code: '206' })).toBe(1);
    expect(await value(staticResponsesTotal, { route: 'metrics-route', code: '404' })).toBe(1);
    // A streamed body is counted when the file stream closes, which may come just after the client saw its last byte.
    let bytes = 0;
    for (let i = 0; i < 200 && bytes < 4 + 2 + BIG_SIZE; i++) {
      bytes = await value(staticBytesTotal, { route: 'metrics-route' });
      if (bytes < 4 + 2 + BIG_SIZE) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(bytes).toBe(4 + 2 + BIG_SIZE);
  });
});
