/**
 * Request bodies through the ingress arrive byte for byte while the sidecar
 * frees each chunk once undici's socket has written it (net/read-buffer.ts):
 * random bodies, announced-length and chunked, to upstreams that read at
 * once, upstreams that stall first and upstreams that read slowly (so the
 * sidecar's writes wait in the socket, when a chunk freed too early would
 * show).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpRequest } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { sha256, writeInPieces } from './helpers/bodies.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

const BODY = randomBytes(3 * 1024 * 1024 + 4321);
/** More than loopback's socket buffers hold, so a slow reader keeps the sidecar's writes in flight. */
const BIG_BODY = randomBytes(16 * 1024 * 1024 + 999);

describe('uploads through ingress', () => {
  let upstream: TestServer;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    upstream = await startHttpServer((req, res) => {
      const hash = createHash('sha256');
      let length = 0;
      req.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        length += chunk.length;
        if (req.url === '/trickle') {
          // A short pause after each read: the sidecar's writes are often still in flight when it writes the next.
          req.pause();
          setTimeout(() => req.resume(), 1);
        }
      });
      req.on('end', () => res.end(JSON.stringify({ sha: hash.digest('hex'), length })));
      if (req.url === '/stall') {
        // Read nothing for a while: the kernel's buffers fill and the sidecar's writes wait.
        req.pause();
        setTimeout(() => req.resume(), 300);
      }
    });
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  up: { endpoints: [${upstream.url}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: / }, upstream: up, timeout: 20s, retry: { attempts: 2 } }
`);
  });
  afterAll(async () => {
    await sidecar.close();
    await upstream.close();
  });

  /** POSTs `body` in pieces of varied size, some a tick apart; `chunked` leaves out the length. */
  const upload = (path: string, chunked: boolean, body = BODY) =>
    new Promise<{ status: number; sha: string; length: number }>((resolve, reject) => {
      const headers = chunked ? {} : { 'content-length': String(body.length) };
      const req = httpRequest(sidecar.url(path), { method: 'POST', headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, ...JSON.parse(text) }));
      });
      req.setTimeout(20_000, () => req.destroy(new Error(`no answer for ${path}`)));
      req.on('error', reject);
      writeInPieces(req, body);
    });

  it('passes random bodies intact to fast and stalled upstreams, with and without a length', async () => {
    const results = await Promise.all([
      upload('/fast', false),
      upload('/fast', true),
      upload('/stall', false),
      upload('/stall', true),
      upload('/stall', false),
      upload('/fast', true),
    ]);
    const want = { status: 200, sha: sha256(BODY), length: BODY.length };
    expect(results).toEqual(Array.from({ length: 6 }, () => want));
  });

  it('passes a big body intact to an upstream that reads slowly', async () => {
    const results = await Promise.all([upload('/trickle', false, BIG_BODY), upload('/trickle', true, BIG_BODY)]);
    const want = { status: 200, sha: sha256(BIG_BODY), length: BIG_BODY.length };
    expect(results).toEqual([want, want]);
  });
});
