/**
 * Connections that leave HTTP (WebSocket upgrades, CONNECT tunnels) get one
 * access line when they close, with the bytes they carried each way
 * (`bytesIn` from the client, `bytesOut` to it; the 101 head itself is not a
 * body). An upgrade no route allows is logged like any refused request. The
 * sidecar runs in its own process.
 */
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { accessLineOf, eventually, openConnect } from './helpers/egress.ts';
import { LOGGED_BASE, spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';
import { startTcpServer } from './helpers/raw.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';

let upstream: TestServer;
let wss: WebSocketServer;
let echo: Awaited<ReturnType<typeof startTcpServer>>;
let sidecar: SidecarProcess;

beforeAll(async () => {
  upstream = await startHttpServer((_req, res) => res.end('plain'));
  wss = new WebSocketServer({ server: upstream.server });
  wss.on('connection', (socket) => {
    socket.send('hello'); // often in the same segment as the 101: http-proxy hands it over apart from the socket
    socket.on('message', (data) => socket.send(`echo:${data.toString()}`));
  });
  echo = await startTcpServer((socket) => socket.pipe(socket));
  sidecar = await spawnSidecar([
    '--config',
    writeConfig(`${LOGGED_BASE}upstreams:
  up: { endpoints: [${upstream.url}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: ws, match: { path: /ws }, upstream: up, websocket: true }
    - { name: plain, match: { path: / }, upstream: up }
egress:
  listen: 127.0.0.1:0
  routes:
    - { name: echo, match: { host: 127.0.0.1, ports: [${echo.port}] } }
`),
  ]);
});

afterAll(async () => {
  await sidecar?.stop();
  wss?.close();
  await upstream?.close();
  await echo?.close();
});

const lineOf = (reqId: string) => accessLineOf(sidecar.lines, reqId);

describe('byte counts of upgraded connections and tunnels', () => {
  it('a WebSocket line counts the frames both ways, not the 101 head', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${sidecar.ingressPort}/ws`, { headers: { 'x-request-id': 'ws-bytes' } });
    const received: string[] = [];
    ws.on('message', (data: Buffer) => received.push(data.toString()));
    await once(ws, 'open');
    const message = 'm'.repeat(1000);
    ws.send(message);
    await eventually(() => (received.length === 2 ? true : undefined));
    expect(received).toEqual(['hello', `echo:${message}`]);
    ws.close();
    await once(ws, 'close');
    const line = await lineOf('ws-bytes');
    expect(line).toMatchObject({ status: 101, route: 'ws' });
    // In: one masked frame of 1000 bytes (+8 of framing) and a close frame. Out: "hello" (+2), the
    // echo (1005 +4) and a close frame. The 101 head (over 100 bytes) would break the upper bounds.
    expect(line.bytesIn).toBeGreaterThanOrEqual(1008);
    expect(line.bytesIn).toBeLessThan(1050);
    expect(line.bytesOut).toBeGreaterThanOrEqual(1016);
    expect(line.bytesOut).toBeLessThan(1060);
    expect(line.upstreamHeaderMs).toEqual(expect.any(Number));
  });

  it('an upgrade on a route without websocket: true is answered 404 and logged', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${sidecar.ingressPort}/plain`, { headers: { 'x-request-id': 'ws-refused' } });
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage];
    expect(res.statusCode).toBe(404);
    expect(res.headers['x-request-id']).toBe('ws-refused');
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    await once(res, 'end');
    expect(await lineOf('ws-refused')).toMatchObject({ status: 404, error: 'no_route', method: 'GET', path: '/plain', bytesOut: Buffer.concat(chunks).length });
  });

  it('a CONNECT tunnel line counts the bytes both ways', async () => {
    const tunnel = await openConnect(sidecar.egressPort!, `127.0.0.1:${echo.port}`, { 'x-request-id': 'tunnel-bytes' });
    expect(tunnel.status).toBe(200);
    const sent = Buffer.alloc(3000, 0x16); // a TLS record type first: a blind tunnel
    let received = 0;
    tunnel.socket.on('data', (chunk: Buffer) => (received += chunk.length));
    tunnel.socket.resume();
    tunnel.socket.write(sent);
    await eventually(() => (received >= sent.length ? true : undefined));
    tunnel.socket.end();
    await once(tunnel.socket, 'close');
    expect(await lineOf('tunnel-bytes')).toMatchObject({ method: 'CONNECT', status: 200, bytesIn: sent.length, bytesOut: sent.length });
  });
});
