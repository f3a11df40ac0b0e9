import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request as httpRequest } from 'node:http';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { WebSocket, WebSocketServer } from 'ws';
import { sha256, writeInPieces } from './helpers/bodies.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

/** Random bytes: a body whose every chunk differs, so a chunk sent twice, lost or overwritten shows. */
const RANDOM_BODY = randomBytes(3 * 1024 * 1024 + 12_345);

/** `size` bytes cycling through all 256 values. */
function binaryBody(size: number): Buffer {
  return Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + 7) % 256));
}

describe('streaming through ingress', () => {
  let upstream: TestServer;
  let wss: WebSocketServer;
  let sidecar: RunningSidecar;
  let releaseSse: () => void = () => undefined;
  const aborted: string[] = [];

  beforeAll(async () => {
    upstream = await startHttpServer((req, res) => {
      if (req.url === '/sse') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: first\n\n');
        // The rest only comes when the test saw the first event through the proxy.
        releaseSse = () => res.end('data: last\n\n');
        return;
      }
      if (req.url === '/slow') {
        res.on('close', () => {
          if (!res.writableFinished) aborted.push('slow');
        });
        return; // never answers: only the client leaving ends it
      }
      if (req.url === '/empty') {
        res.writeHead(200, { 'content-length': '0', 'x-kind': 'empty' });
        return void res.end();
      }
      if (req.url === '/no-content') {
        res.writeHead(204);
        return void res.end();
      }
      if (req.url?.startsWith('/bytes/')) {
        // Every byte value, in one write with its length: the proxy's last chunk of a small body goes out as latin1 text.
        const body = binaryBody(Number(req.url.slice('/bytes/'.length)));
        res.writeHead(200, { 'content-length': String(body.length), 'content-type': 'application/octet-stream' });
        return void res.end(body);
      }
      if (req.url === '/random/length' || req.url === '/random/chunked') {
        if (req.url === '/random/length') res.writeHead(200, { 'content-length': String(RANDOM_BODY.length) });
        else res.writeHead(200, { 'transfer-encoding': 'chunked' });
        return void writeInPieces(res, RANDOM_BODY);
      }
      if (req.url === '/pieces') {
        // An announced length sent in three writes: the proxy must wait for the last one.
        res.writeHead(200, { 'content-length': '15' });
        res.write('first');
        setTimeout(() => res.write('-mid-'), 20);
        return void setTimeout(() => res.end('last!'), 40);
      }
      res.end('plain');
    });
    wss = new WebSocketServer({ server: upstream.server });
    wss.on('connection', (socket, req) => {
      socket.send(`hello ${req.url} ${req.headers['x-request-id'] ? 'with-id' : 'no-id'}`);
      socket.on('message', (data) => socket.send(`echo:${data.toString()}`));
    });
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  up: { endpoints: [${upstream.url}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: ws, match: { path: /ws/ }, upstream: up, websocket: true, rewrite: { stripPrefix: /ws } }
    - { name: nows, match: { path: /nows }, upstream: up }
    - { name: rest, match: { path: / }, upstream: up, timeout: 20s }
`);
  });
  afterAll(async () => {
    await sidecar.close();
    wss.close();
    await upstream.close();
  });

  it('ends bodies of every announced length, empty ones and HEAD included, on a kept-alive connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const get = (path: string, method = 'GET') =>
        new Promise<{ status: number; body: string; length?: string }>((resolve, reject) => {
          const req = httpRequest(sidecar.url(path), { method, agent }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (body += chunk));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body, length: res.headers['content-length'] }));
          });
          req.setTimeout(5_000, () => req.destroy(new Error(`no complete answer for ${method} ${path}`)));
          req.on('error', reject);
          req.end();
        });
      expect(await get('/empty')).toEqual({ status: 200, body: '', length: '0' });
      expect(await get('/no-content')).toMatchObject({ status: 204, body: '' });
      expect(await get('/pieces')).toEqual({ status: 200, body: 'first-mid-last!', length: '15' });
      expect(await get('/pieces', 'HEAD')).toEqual({ status: 200, body: '', length: '15' });
      expect(await get('/plain')).toEqual({ status: 200, body: 'plain', length: '5' });
    } finally {
      agent.destroy();
    }
  });

  it('passes every byte value through exactly, in small and large bodies', async () => {
    for (const size of [1, 256, 1000, 16 * 1024, 16 * 1024 + 1, 200_000]) {
      const res = await fetch(sidecar.url(`/bytes/${size}`));
      const body = Buffer.from(await res.arrayBuffer());
      expect([size, res.status, body.equals(binaryBody(size))]).toEqual([size, 200, true]);
    }
  });

  it('relays big bodies intact to fast and slow readers at once (their read buffers are freed as they are written)', async () => {
    // A slow reader keeps the proxy's writes pending, which is when a buffer freed too early would show.
    const fetchBody = (path: string, slow: boolean) =>
      new Promise<{ status: number; sha: string; length: number }>((resolve, reject) => {
        const req = httpRequest(sidecar.url(path), (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => {
            chunks.push(chunk);
            if (slow && chunks.length === 1) {
              // Stop reading until the kernel's buffers are full and the proxy's writes wait.
              res.pause();
              setTimeout(() => res.resume(), 300);
            }
          });
          res.on('end', () => {
            const body = Buffer.concat(chunks);
            resolve({ status: res.statusCode ?? 0, sha: sha256(body), length: body.length });
          });
        });
        req.setTimeout(20_000, () => req.destroy(new Error(`no complete answer for ${path}`)));
        req.on('error', reject);
        req.end();
      });
    const paths = ['/random/length', '/random/chunked'];
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => fetchBody(paths[i % 2] as string, i >= 4)));
    const want = { status: 200, sha: sha256(RANDOM_BODY), length: RANDOM_BODY.length };
    expect(results).toEqual(Array.from({ length: 8 }, () => want));
  });

  it('flushes server-sent events as they arrive', async () => {
    const req = httpRequest(sidecar.url('/sse'));
    req.end();
    const [res] = (await once(req, 'response')) as [import('node:http').IncomingMessage];
    expect(res.headers['content-type']).toBe('text/event-stream');
    const [first] = (await once(res, 'data')) as [Buffer];
    expect(first.toString()).toBe('data: first\n\n');
    releaseSse();
    let rest = '';
    res.on('data', (chunk: Buffer) => (rest += chunk.toString()));
    await once(res, 'end');
    expect(rest).toBe('data: last\n\n');
  });

  it('aborts the upstream request when the client disconnects', async () => {
    const req = httpRequest(sidecar.url('/slow'));
    req.on('error', () => undefined);
    req.end();
    await new Promise((resolve) => setTimeout(resolve, 200));
    req.destroy();
    for (let i = 0; i < 50 && aborted.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(aborted).toEqual(['slow']);
  });

  it('proxies a WebSocket upgrade (echo), with the prefix stripped and a request id', async () => {
    const ws = new WebSocket(sidecar.url('/ws/chat').replace('http:', 'ws:'));
    const messages: string[] = [];
    ws.on('message', (data) => messages.push(data.toString()));
    await once(ws, 'open');
    ws.send('ping');
    for (let i = 0; i < 50 && messages.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(messages).toEqual(['hello /chat with-id', 'echo:ping']);
    ws.close();
    await once(ws, 'close');
  });

  it('refuses an upgrade on a route without websocket: true', async () => {
    const ws = new WebSocket(sidecar.url('/nows').replace('http:', 'ws:'));
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, import('node:http').IncomingMessage];
    expect(res.statusCode).toBe(404);
    expect(res.headers['x-sidecar-error']).toBe('no_route');
    res.destroy();
  });
});
