/**
 * Regression suite for the static root boundary (issue 5, "Safety"): no request
 * target, however encoded, and no symlink may return a byte from outside `root`.
 * Requests go out on a raw socket so that no client normalises the path first,
 * and the whole raw response (head and body) is searched for the secret.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { createStaticHandler } from '../src/ingress/static.ts';
import type { StaticConfig } from '../src/config/schema.ts';

const SECRET = 'TOP-SECRET-7c1e5a9d';
const PASSWD_MARK = 'root:x:0:0';

let base: string;
let root: string;
const closers: Array<() => Promise<void>> = [];

async function serve(overrides: Partial<StaticConfig>, prefix: string): Promise<number> {
  const handler = createStaticHandler({
    name: 'traversal',
    prefix,
    config: {
      root,
      maxAge: 0,
      immutable: false,
      precompressed: true,
      index: 'index.html',
      fallthrough: false,
      dotfiles: 'deny',
      cache: { maxBytes: 1024 * 1024, maxFileSize: 64 * 1024, revalidate: 0 },
      ...overrides,
    },
  });
  const server = http.createServer((req, res) => {
    Promise.resolve(handler.handle(req, res)).then(
      (result) => {
        if (result === 'miss') {
          res.writeHead(299);
          res.end('MISS');
        }
      },
      (err: unknown) => res.destroy(err as Error),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        handler.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return (server.address() as AddressInfo).port;
}

/** The whole raw response to `GET target` sent byte for byte; status 0 if the server closed without one. */
function raw(port: number, target: string, extraHeaders = ''): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer for ${target}`)));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, text });
    });
    socket.write(Buffer.from(`GET ${target} HTTP/1.1\r\nHost: localhost\r\n${extraHeaders}Connection: close\r\n\r\n`, 'latin1'));
  });
}

/** Traversal attempts, written for the prefix "/static/"; each is also run with the prefix "/". */
const CORPUS = [
  '../secret.txt',
  '../../secret.txt',
  'inner/../../secret.txt',
  '%2e%2e/secret.txt',
  '%2E%2e/secret.txt',
  '%2e%2E%2fsecret.txt',
  '.%2e/secret.txt',
  '%2e./secret.txt',
  '..%2fsecret.txt',
  '..%2Fsecret.txt',
  '..%5csecret.txt',
  '..%5Csecret.txt',
  '%2e%2e%5csecret.txt',
  '..\\secret.txt',
  '\\..\\secret.txt',
  'inner\\..\\..\\secret.txt',
  '%252e%252e/secret.txt',
  '%252e%252e%252fsecret.txt',
  '..%252f..%252fsecret.txt',
  '%c0%ae%c0%ae/secret.txt',
  '%c0%ae%c0%ae%c0%afsecret.txt',
  '..%c0%afsecret.txt',
  '..%c1%9csecret.txt',
  '%e0%80%ae%e0%80%ae/secret.txt',
  '%f0%80%80%ae%f0%80%80%ae/secret.txt',
  '%u002e%u002e/secret.txt',
  '..%u2215secret.txt',
  '%ef%bc%8e%ef%bc%8e/secret.txt',
  '%00../secret.txt',
  'name.txt%00/../../secret.txt',
  '..%00/secret.txt',
  '....//secret.txt',
  '....//....//secret.txt',
  '..;/secret.txt',
  '..%3b/secret.txt',
  '.../secret.txt',
  'inner/%2e%2e/%2e%2e/secret.txt',
  'inner/..%2f..%2fsecret.txt',
  '/../secret.txt',
  '//../secret.txt',
  `${'../'.repeat(20)}etc/passwd`,
  `${'%2e%2e/'.repeat(20)}etc/passwd`,
  `${'..%2f'.repeat(20)}etc%2fpasswd`,
  '/etc/passwd',
  '%2fetc%2fpasswd',
  '%5cetc%5cpasswd',
  'file:///etc/passwd',
  'C:%5csecret.txt',
];

beforeAll(async () => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'sidecar-traversal-'));
  root = path.join(base, 'public');
  fs.mkdirSync(path.join(root, 'inner', 'deep'), { recursive: true });
  fs.writeFileSync(path.join(base, 'secret.txt'), SECRET);
  fs.writeFileSync(path.join(base, 'secret.txt.br'), SECRET);
  fs.mkdirSync(path.join(base, 'outside'));
  fs.writeFileSync(path.join(base, 'outside', 'index.html'), SECRET);
  fs.writeFileSync(path.join(base, 'outside', 'file.txt'), SECRET);
  fs.writeFileSync(path.join(root, 'name.txt'), 'tobi');
  fs.writeFileSync(path.join(root, 'inner', 'file.txt'), 'inner file');
  fs.writeFileSync(path.join(root, 'inner', 'deep', 'x.txt'), 'deep');
  // Escapes: relative and absolute file links, a folder link, a link in a chain, an index and a precompressed variant.
  fs.symlinkSync('../secret.txt', path.join(root, 'escape.txt'));
  fs.symlinkSync(path.join(base, 'secret.txt'), path.join(root, 'escape-abs.txt'));
  fs.symlinkSync('../outside', path.join(root, 'escdir'));
  fs.symlinkSync('escape.txt', path.join(root, 'chain.txt'));
  fs.symlinkSync('../../secret.txt', path.join(root, 'inner', 'up.txt'));
  fs.mkdirSync(path.join(root, 'idx'));
  fs.symlinkSync('../../secret.txt', path.join(root, 'idx', 'index.html'));
  fs.writeFileSync(path.join(root, 'tobi.txt'), 'identity tobi');
  fs.symlinkSync('../secret.txt', path.join(root, 'tobi.txt.br'));
  fs.symlinkSync('/etc', path.join(root, 'etc-link'));
  // Links that stay inside are fine.
  fs.symlinkSync('name.txt', path.join(root, 'inside-link.txt'));
  fs.symlinkSync('inner', path.join(root, 'inner-link'));
  fs.symlinkSync(path.join(root, 'inner', 'deep', 'x.txt'), path.join(root, 'abs-inside.txt'));
  fs.symlinkSync('public', path.join(base, 'public-link'));
});

afterAll(async () => {
  await Promise.all(closers.map((close) => close()));
  fs.rmSync(base, { recursive: true, force: true });
});

describe('traversal corpus', () => {
  it('has at least 20 encodings', () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(20);
  });

  for (const prefix of ['/static/', '/']) {
    for (const fallthrough of [false, true]) {
      it(`never returns a byte from outside root (prefix ${prefix}, fallthrough ${fallthrough})`, async () => {
        const port = await serve({ fallthrough, dotfiles: 'allow' }, prefix);
        const corpus = [...CORPUS, `${base}/secret.txt`.slice(1), `${path.relative(root, path.join(base, 'secret.txt'))}`];
        for (const attack of corpus) {
          const target = attack.startsWith('/') || attack.startsWith('file:') ? attack : prefix + attack;
          const { status, text } = await raw(port, target);
          expect(text, target).not.toContain(SECRET);
          expect(text, target).not.toContain(PASSWD_MARK);
          // Refused by Node's parser (400, or closed), by us (400/404), or handed on (299); never a file.
          expect([0, 400, 404, 299], `${target} -> ${status}`).toContain(status);
          if (!fallthrough) expect(status, target).not.toBe(299);
        }
        // The same server still serves what is inside.
        expect((await raw(port, `${prefix}inner/file.txt`)).text).toContain('inner file');
      });
    }
  }

  it('is potent: a naive join(root, decodeURIComponent(path)) server leaks through it', async () => {
    // Proves the harness (raw socket, secret placement) would see a leak if the guards were gone.
    const server = http.createServer((req, res) => {
      let body = 'nope';
      try {
        body = fs.readFileSync(path.join(root, decodeURIComponent((req.url ?? '/').slice('/static/'.length))), 'utf8');
      } catch {
        // not a file
      }
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    let leaks = 0;
    try {
      for (const attack of CORPUS) if ((await raw(port, `/static/${attack}`)).text.includes(SECRET)) leaks++;
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    expect(leaks).toBeGreaterThanOrEqual(10);
  });

  it('an absolute-form target cannot climb either', async () => {
    const port = await serve({}, '/static/');
    for (const target of ['http://localhost/static/../secret.txt', 'http://localhost/static/%2e%2e/secret.txt', 'http://localhost/static/..%2fsecret.txt']) {
      const { status, text } = await raw(port, target);
      expect(text).not.toContain(SECRET);
      expect([400, 404]).toContain(status);
    }
  });
});

describe('symlinks', () => {
  const escapes = ['escape.txt', 'escape-abs.txt', 'escdir/file.txt', 'escdir/', 'escdir', 'chain.txt', 'inner/up.txt', 'idx/', 'idx', 'etc-link/passwd'];

  for (const dotfiles of ['deny', 'allow'] as const) {
    it(`a link whose real path leaves the root is not found (dotfiles ${dotfiles})`, async () => {
      const port = await serve({ dotfiles }, '/static/');
      for (const name of escapes) {
        const { status, text } = await raw(port, `/static/${name}`);
        expect(text, name).not.toContain(SECRET);
        expect(text, name).not.toContain(PASSWD_MARK);
        expect(status, name).toBe(404);
      }
    });
  }

  it('with fallthrough, an escaping link is a miss, never content', async () => {
    const port = await serve({ fallthrough: true }, '/static/');
    for (const name of escapes) {
      const { status, text } = await raw(port, `/static/${name}`);
      expect(text, name).not.toContain(SECRET);
      expect(status, name).toBe(299);
    }
  });

  it('a precompressed variant that escapes is skipped: the identity file is served', async () => {
    const port = await serve({}, '/static/');
    const { status, text } = await raw(port, '/static/tobi.txt', 'Accept-Encoding: br, gzip\r\n');
    expect(status).toBe(200);
    expect(text).not.toContain(SECRET);
    expect(text).toContain('identity tobi');
    expect(text.toLowerCase()).not.toContain('content-encoding');
  });

  it('links that stay inside the root are served', async () => {
    const port = await serve({}, '/static/');
    expect((await raw(port, '/static/inside-link.txt')).text).toMatch(/^HTTP\/1\.1 200[\s\S]*\r\n\r\ntobi$/);
    expect((await raw(port, '/static/inner-link/file.txt')).text).toMatch(/\r\n\r\ninner file$/);
    expect((await raw(port, '/static/abs-inside.txt')).text).toMatch(/\r\n\r\ndeep$/);
  });

  it('a root that is itself a symlink works, and its boundary is its real path', async () => {
    const handler = createStaticHandler({
      name: 'linked-root',
      prefix: '/',
      config: {
        root: path.join(base, 'public-link'),
        maxAge: 0,
        immutable: false,
        precompressed: false,
        index: 'index.html',
        fallthrough: false,
        dotfiles: 'deny',
        cache: { maxBytes: 0, maxFileSize: 0, revalidate: 0 },
      },
    });
    const server = http.createServer((req, res) => void handler.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      expect((await raw(port, '/name.txt')).text).toMatch(/\r\n\r\ntobi$/);
      const escaped = await raw(port, '/escape.txt');
      expect(escaped.status).toBe(404);
      expect(escaped.text).not.toContain(SECRET);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
