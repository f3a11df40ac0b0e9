/**
 * A WebSocket upgrade is one request of its route's rate limit (issue 19):
 * upgrades within the burst open, the next is answered `429 rate_limited`
 * with Retry-After instead of `101`, and the connections already open go on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import type { IncomingMessage } from 'node:http';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';

type Outcome = { open: WebSocket } | { refused: IncomingMessage };

describe('rateLimit: WebSocket upgrades', () => {
  let upstream: TestServer;
  let wss: WebSocketServer;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    upstream = await startHttpServer((_req, res) => res.end('not a websocket'));
    wss = new WebSocketServer({ server: upstream.server });
    wss.on('connection', (socket) => socket.on('message', (data) => socket.send(`echo ${data.toString()}`)));
    sidecar = await startSidecar(`${TEST_BASE}
upstreams: { app: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: live, match: { path: / }, upstream: app, websocket: true, rateLimit: { requests: 1, per: 1m, burst: 2 } }
`);
  });
  afterAll(async () => {
    await sidecar?.close();
    wss?.close();
    await upstream?.close();
  });

  function connect(): Promise<Outcome> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(sidecar.url('/live').replace('http:', 'ws:'));
      socket.once('open', () => resolve({ open: socket }));
      socket.once('unexpected-response', (_req, res) => {
        res.resume();
        resolve({ refused: res });
      });
      socket.once('error', reject);
    });
  }

  it('opens upgrades within the burst and refuses the next with 429', async () => {
    const first = await connect();
    const second = await connect();
    const third = await connect();
    expect('open' in first && 'open' in second).toBe(true);
    expect('refused' in third).toBe(true);
    const refused = (third as { refused: IncomingMessage }).refused;
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['x-sidecar-error']).toBe('rate_limited');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    // The open ones still work.
    const socket = (first as { open: WebSocket }).open;
    const reply = new Promise<string>((resolve) => socket.once('message', (data) => resolve(data.toString())));
    socket.send('hi');
    expect(await reply).toBe('echo hi');
    for (const outcome of [first, second]) if ('open' in outcome) outcome.open.close();
  });
});
