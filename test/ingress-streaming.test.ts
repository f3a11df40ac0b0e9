import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpRequest } from 'node:http';
import { once } from 'node:events';
import { WebSocket, WebSocketServer } from 'ws';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

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
