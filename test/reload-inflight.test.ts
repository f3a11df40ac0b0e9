/**
 * What is in flight when a reload removes its route keeps going on the
 * snapshot it started with: a streaming HTTP response (whose upstream is
 * removed too, and whose pool then drains and closes), an open WebSocket and
 * an egress CONNECT tunnel. New requests on the removed route get 404 / 403.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { Client, request } from 'undici';
import { WebSocket, WebSocketServer } from 'ws';
import { startHttpServer, echoServer, type TestServer } from './helpers/servers.ts';
import { startTcpServer } from './helpers/raw.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { waitFor } from './helpers/reload.ts';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function postReload(sidecar: RunningSidecar): Promise<number> {
  const response = await request(sidecar.admin('/reload'), { method: 'POST' });
  await response.body.dump();
  return response.statusCode;
}

/** Everything a socket received so far, as latin1 text. */
function received(socket: Socket): { text: () => string } {
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  return { text: () => text };
}

describe('reload while things are in flight', () => {
  it('a streaming response finishes although its route and upstream were removed; the old pool then closes', async () => {
    let finish: (() => void) | undefined;
    const upstreamSockets = new Set<Socket>();
    const slow = await startHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first;');
      finish = () => res.end('last');
    });
    slow.server.on('connection', (socket: Socket) => {
      upstreamSockets.add(socket);
      socket.once('close', () => upstreamSockets.delete(socket));
    });
    const other = await echoServer();
    cleanups.push(() => slow.close(), () => other.close());
    const sidecar = await startSidecar(`${TEST_BASE}
upstreams: { slow: { endpoints: [${slow.url}] }, other: { endpoints: [${other.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: stream, match: { path: /stream }, upstream: slow }
    - { name: other, match: { path: /other }, upstream: other }
`);
    cleanups.push(() => sidecar.close());

    const client = new Client(sidecar.url(''));
    cleanups.push(() => client.close());
    const response = await client.request({ path: '/stream', method: 'GET' });
    const chunks: string[] = [];
    response.body.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
    await waitFor('the first chunk', () => (chunks.join('') === 'first;' ? true : undefined));

    writeFileSync(sidecar.file, `${TEST_BASE}
upstreams: { other: { endpoints: [${other.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: other, match: { path: /other }, upstream: other }
`);
    expect(await postReload(sidecar)).toBe(200);
    const gone = await request(sidecar.url('/stream'));
    expect(gone.statusCode).toBe(404);
    expect(gone.headers['x-sidecar-error']).toBe('no_route');
    await gone.body.dump();

    expect(upstreamSockets.size).toBe(1); // the removed upstream's pool is draining, not cut
    finish!();
    await once(response.body, 'end');
    expect(chunks.join('')).toBe('first;last');
    // Drained: the retired pool closes its keep-alive connection.
    await waitFor('the retired pool to close its connection', () => (upstreamSockets.size === 0 ? true : undefined));
  });

  it('an open WebSocket keeps working after a reload removed its route; a new upgrade there is 404 no_route', async () => {
    const upstream = await startHttpServer((_req, res) => res.end('plain'));
    const wss = new WebSocketServer({ server: upstream.server });
    wss.on('connection', (socket) => socket.on('message', (data) => socket.send(`echo:${data.toString()}`)));
    cleanups.push(() => upstream.close(), () => wss.close());
    const sidecar = await startSidecar(`${TEST_BASE}
upstreams: { up: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: ws, match: { path: /ws }, upstream: up, websocket: true }
    - { name: http, match: { path: /http }, upstream: up }
`);
    cleanups.push(() => sidecar.close());

    const ws = new WebSocket(sidecar.url('/ws').replace('http:', 'ws:'));
    cleanups.push(() => ws.terminate());
    await once(ws, 'open');
    const replies: string[] = [];
    ws.on('message', (data) => replies.push(data.toString()));
    ws.send('before');
    await waitFor('the first echo', () => (replies.length === 1 ? true : undefined));

    writeFileSync(sidecar.file, `${TEST_BASE}
upstreams: { up: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: http, match: { path: /http }, upstream: up }
`);
    expect(await postReload(sidecar)).toBe(200);

    ws.send('after');
    await waitFor('the second echo', () => (replies.length === 2 ? true : undefined));
    expect(replies).toEqual(['echo:before', 'echo:after']);
    expect(ws.readyState).toBe(WebSocket.OPEN);

    const refused = new WebSocket(sidecar.url('/ws').replace('http:', 'ws:'));
    const [, answer] = (await once(refused, 'unexpected-response')) as [unknown, import('node:http').IncomingMessage];
    expect(answer.statusCode).toBe(404);
    expect(answer.headers['x-sidecar-error']).toBe('no_route');
    answer.resume();
    refused.on('error', () => undefined);
    refused.terminate();
  });

  it('an open CONNECT tunnel keeps its bytes flowing after a reload removed its route; a new CONNECT is 403', async () => {
    const echo = await startTcpServer((socket) => socket.pipe(socket));
    cleanups.push(() => echo.close());
    const withRoute = `${TEST_BASE}
egress:
  listen: 127.0.0.1:0
  routes:
    - { match: { host: 127.0.0.1, ports: [${echo.port}] } }
`;
    const sidecar = await startSidecar(withRoute);
    cleanups.push(() => sidecar.close());
    const egressPort = sidecar.sidecar.egressPort;
    expect(egressPort).toBeGreaterThan(0);

    const tunnel = connect(egressPort!, '127.0.0.1');
    cleanups.push(() => tunnel.destroy());
    const fromTunnel = received(tunnel);
    await once(tunnel, 'connect');
    tunnel.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`);
    await waitFor('the 200', () => (fromTunnel.text().includes('\r\n\r\n') ? true : undefined));
    const head = fromTunnel.text();
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    // Bytes that are not HTTP: a raw tunnel, echoed by the server behind it.
    tunnel.write('\x00ping-1');
    await waitFor('echo 1', () => (fromTunnel.text() === `${head}\x00ping-1` ? true : undefined));

    writeFileSync(sidecar.file, `${TEST_BASE}
egress:
  listen: 127.0.0.1:0
  routes: []
`);
    expect(await postReload(sidecar)).toBe(200);

    tunnel.write('\x00ping-2');
    await waitFor('echo 2', () => (fromTunnel.text() === `${head}\x00ping-1\x00ping-2` ? true : undefined));

    const second = connect(egressPort!, '127.0.0.1');
    cleanups.push(() => second.destroy());
    const fromSecond = received(second);
    await once(second, 'connect');
    second.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`);
    await waitFor('the 403', () => (fromSecond.text().includes('\r\n\r\n') ? true : undefined));
    expect(fromSecond.text()).toMatch(/^HTTP\/1\.1 403 /);
    expect(fromSecond.text()).toMatch(/x-sidecar-error: destination_denied/i);

    tunnel.write('\x00ping-3');
    await waitFor('echo 3', () => (fromTunnel.text() === `${head}\x00ping-1\x00ping-2\x00ping-3` ? true : undefined));
    expect(tunnel.destroyed).toBe(false);
  });
});
