/**
 * WebSocket upgrades on ingress count with their upstream like requests: an
 * open WebSocket holds a place in `breaker.maxConcurrent` (503 overloaded
 * beyond) and shows in the endpoint's `inFlight`; an upgrade that fails
 * (connect refused, reset before the 101) is a failure for the breaker
 * (then 503 circuit_open) and for outlier ejection.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { eventually, upstreamsView } from './helpers/misbehave.ts';
import { startTcpServer } from './helpers/raw.ts';
import { closedPort, startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { attachEchoServer, upgrade } from './helpers/websocket.ts';

describe('WebSocket upgrades under the upstream breaker and in-flight limit', () => {
  let upstream: TestServer;
  let echo: ReturnType<typeof attachEchoServer>;
  let resetter: Awaited<ReturnType<typeof startTcpServer>>;
  let sidecar: RunningSidecar;
  const open: WebSocket[] = [];

  beforeAll(async () => {
    upstream = await startHttpServer((_req, res) => res.end('plain'));
    echo = attachEchoServer(upstream.server);
    // Resets every connection as soon as the upgrade request arrives: no 101.
    resetter = await startTcpServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
    const dead = await closedPort();
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  capped: { endpoints: [${upstream.url}], breaker: { maxConcurrent: 2 } }
  dead: { endpoints: ["http://127.0.0.1:${dead}"], breaker: { errorRate: 0.5, minRequests: 3, window: 10s, openFor: 30s } }
  pair:
    endpoints: ["http://127.0.0.1:${resetter.port}", ${upstream.url}]
    balance: round-robin
    outlier: { consecutiveErrors: 2, ejectFor: 30s, maxEjectedPercent: 50 }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: /capped }, upstream: capped, websocket: true }
    - { match: { path: /dead }, upstream: dead, websocket: true }
    - { match: { path: /pair }, upstream: pair, websocket: true }
`);
  });
  afterEach(() => {
    for (const ws of open.splice(0)) ws.terminate();
  });
  afterAll(async () => {
    await sidecar.close();
    echo.wss.close();
    await Promise.all([upstream.close(), resetter.close()]);
  });

  const wsUrl = (path: string) => sidecar.url(path).replace('http:', 'ws:');
  const view = async () => upstreamsView(sidecar.admin('/upstreams'));

  async function opened(path: string): Promise<WebSocket> {
    const result = await upgrade(wsUrl(path));
    if (result.kind !== 'open') throw new Error(`upgrade on ${path} not open: ${JSON.stringify(result)}`);
    open.push(result.ws);
    return result.ws;
  }

  it('maxConcurrent: two open WebSockets fill it, a third is 503 overloaded; in-flight shows them until they close', async () => {
    const first = await opened('/capped');
    await opened('/capped');
    expect((await view()).capped.endpoints[0].inFlight).toBe(2);
    expect(await upgrade(wsUrl('/capped'))).toMatchObject({ kind: 'answered', status: 503, error: 'overloaded' });
    expect(echo.requests).toHaveLength(2);

    first.close();
    expect(await eventually(async () => (await view()).capped.endpoints[0].inFlight === 1, 100, 20)).toBe(true);
    await opened('/capped');
  });

  it('failed upgrades (connect refused) open the breaker; then an upgrade is 503 circuit_open', async () => {
    for (let i = 0; i < 3; i++) {
      expect(await upgrade(wsUrl('/dead'))).toMatchObject({ kind: 'answered', status: 502, error: 'upstream_connect_failed' });
    }
    expect((await view()).dead.breaker).toBe('open');
    expect(await upgrade(wsUrl('/dead'))).toMatchObject({ kind: 'answered', status: 503, error: 'circuit_open' });
  });

  it('an upstream that resets before the 101 is a failure for outlier ejection', async () => {
    const kinds: string[] = [];
    for (let i = 0; i < 4; i++) {
      const result = await upgrade(wsUrl('/pair'));
      if (result.kind === 'open') open.push(result.ws);
      kinds.push(result.kind === 'answered' ? `${result.status} ${result.error}` : result.kind);
    }
    expect(kinds.sort()).toEqual(['502 upstream_reset', '502 upstream_reset', 'open', 'open']);
    expect((await view()).pair.endpoints.map((endpoint) => endpoint.ejected)).toEqual([true, false]);
    for (let i = 0; i < 3; i++) await opened('/pair');
  });
});
