/**
 * An upstream may answer before it has read the request body (a 413, a
 * redirect, or a server that ignores bodies). The client's connection must
 * still serve its next request: the sidecar reads and drops the rest of the
 * body, as node:http does for a handler that never reads one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request as httpRequest } from 'node:http';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

describe('an upstream that answers before reading the body', () => {
  let upstream: TestServer;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    upstream = await startHttpServer((req, res) => {
      // Answer at once; node:http drains the body afterwards.
      res.end(`early ${req.url}`);
    });
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  up: { endpoints: [${upstream.url}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: / }, upstream: up, timeout: 10s }
`);
  });
  afterAll(async () => {
    await sidecar.close();
    await upstream.close();
  });

  it('keeps the client connection usable after a big body it did not need', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const post = (path: string, size: number) =>
      new Promise<{ status: number; body: string; reused: boolean }>((resolve, reject) => {
        const req = httpRequest(sidecar.url(path), { method: 'POST', agent, headers: { 'content-length': String(size) } }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body, reused: req.reusedSocket }));
        });
        req.setTimeout(5_000, () => req.destroy(new Error(`no answer for ${path}`)));
        req.on('error', reject);
        // Sent in pieces a tick apart, so the answer comes while the body is still on its way.
        let sent = 0;
        const more = () => {
          const piece = Math.min(64 * 1024, size - sent);
          req.write(Buffer.alloc(piece, 'x'));
          sent += piece;
          if (sent < size) setTimeout(more, 1);
          else req.end();
        };
        more();
      });
    try {
      const results = [];
      for (let i = 0; i < 3; i++) results.push(await post(`/upload-${i}`, 4 * 1024 * 1024));
      expect(results.map((r) => [r.status, r.body])).toEqual([0, 1, 2].map((i) => [200, `early /upload-${i}`]));
    } finally {
      agent.destroy();
    }
  });
});
