/**
 * A WebSocket the sidecar cuts on its side (shutdown past its deadline
 * destroys the upgraded client connections) closes its upstream connection
 * too: http-proxy's pipe passes a FIN on, not a destroy, so the relay ties
 * the two sockets' ends together. Otherwise the upstream would keep a
 * connection nobody can use.
 */
import type { Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { closedWithin } from './helpers/egress.ts';
import { eventually } from './helpers/misbehave.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE } from './helpers/sidecar.ts';
import { upgrade } from './helpers/websocket.ts';

describe('WebSocket teardown', () => {
  let upstream: TestServer | undefined;
  let wss: WebSocketServer | undefined;
  const upstreamSockets: Socket[] = [];
  afterAll(async () => {
    for (const socket of upstreamSockets) socket.destroy(); // upgraded: the server's close does not end them
    wss?.close();
    await upstream?.close();
  });

  it('closes the upstream connection when the sidecar destroys the client connection at shutdown', async () => {
    upstream = await startHttpServer((_req, res) => res.end('plain'));
    upstream.server.on('upgrade', (_req, socket: Socket) => upstreamSockets.push(socket));
    wss = new WebSocketServer({ server: upstream.server });
    wss.on('connection', (ws) => ws.send('hello'));
    const sidecar = await startSidecar(`${TEST_BASE}
upstreams: { up: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: / }, upstream: up, websocket: true }
`);
    const result = await upgrade(sidecar.url('/ws').replace('http:', 'ws:'));
    if (result.kind !== 'open') throw new Error(`upgrade not open: ${JSON.stringify(result)}`);
    expect(await eventually(() => upstreamSockets.length === 1, 50, 20)).toBe(true);
    const client = new Promise<void>((resolve) => result.ws.once('close', () => resolve()));

    await sidecar.close(); // waits 1 s for the WebSocket, then destroys it
    await client;
    expect(await closedWithin(upstreamSockets[0], 3_000)).toBe(true);
  });
});
