/**
 * A blind CONNECT tunnel to a logical name (a route with `upstream:`) counts
 * with its upstream like a request: it holds one of the endpoint's
 * `connections`, a place in `breaker.maxConcurrent` (503 overloaded beyond,
 * before `200 Connection Established`), and shows in the endpoint's
 * `inFlight` on GET /upstreams while it is open.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Socket } from 'node:net';
import { echoThrough, openConnect, proxiedRequest } from './helpers/egress.ts';
import { eventually, upstreamsView } from './helpers/misbehave.ts';
import { startTcpServer } from './helpers/raw.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

describe('tunnels to a logical name count against the upstream', () => {
  let echo: Awaited<ReturnType<typeof startTcpServer>>;
  let accepted = 0;
  let sidecar: RunningSidecar;
  const open: Socket[] = [];

  beforeAll(async () => {
    echo = await startTcpServer((socket) => {
      accepted++;
      socket.pipe(socket);
    });
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  narrow: { endpoints: ["http://127.0.0.1:${echo.port}"], connections: 2 }
  capped: { endpoints: ["http://127.0.0.1:${echo.port}"], breaker: { maxConcurrent: 2 } }
egress:
  listen: 127.0.0.1:0
  routes:
    - { name: narrow, match: { host: narrow.internal }, upstream: narrow }
    - { name: capped, match: { host: capped.internal }, upstream: capped }
`);
  });
  afterAll(async () => {
    await sidecar.close();
    await echo.close();
  });
  afterEach(async () => {
    for (const socket of open.splice(0)) socket.destroy();
    expect(await eventually(async () => (await inFlight('narrow')) === 0 && (await inFlight('capped')) === 0, 100, 20)).toBe(true);
  });

  /** A blind tunnel (lower-case bytes are no HTTP request line) that echoed `ping`. */
  async function echoingTunnel(host: string): Promise<Socket> {
    const tunnel = await openConnect(sidecar.egressPort!, `${host}:9000`);
    expect(tunnel.status).toBe(200);
    open.push(tunnel.socket);
    expect(await echoThrough(tunnel.socket, 'ping')).toBe('ping');
    return tunnel.socket;
  }

  async function inFlight(name: string): Promise<number> {
    return (await upstreamsView(sidecar.admin('/upstreams')))[name].endpoints[0].inFlight;
  }

  it('connections: a tunnel beyond the endpoint limit is closed without reaching the endpoint; one closing makes room', async () => {
    const first = await echoingTunnel('narrow.internal');
    await echoingTunnel('narrow.internal');
    expect(accepted).toBe(2);

    const third = await openConnect(sidecar.egressPort!, 'narrow.internal:9000');
    expect(third.status).toBe(200); // whether it carries HTTP (pooled) or is a blind tunnel is known only after 200
    open.push(third.socket);
    expect(await echoThrough(third.socket, 'ping')).toBe('');
    expect(third.socket.destroyed || third.socket.readableEnded).toBe(true);
    expect(accepted).toBe(2);

    first.destroy();
    expect(await eventually(async () => (await inFlight('narrow')) === 1, 100, 20)).toBe(true);
    await echoingTunnel('narrow.internal');
    expect(accepted).toBe(3);
  });

  it('maxConcurrent: beyond it a CONNECT is 503 overloaded before 200, and requests to the upstream are refused too', async () => {
    const first = await echoingTunnel('capped.internal');
    await echoingTunnel('capped.internal');
    const before = accepted;

    const third = await openConnect(sidecar.egressPort!, 'capped.internal:9000');
    expect(third.status).toBe(503);
    expect(third.response).toMatch(/x-sidecar-error: overloaded/i);
    const request = await proxiedRequest(sidecar.egressPort!, 'http://capped.internal/x');
    expect(request.status).toBe(503);
    expect(request.headers['x-sidecar-error']).toBe('overloaded');
    expect(accepted).toBe(before);

    first.destroy();
    expect(await eventually(async () => (await inFlight('capped')) === 1, 100, 20)).toBe(true);
    await echoingTunnel('capped.internal');
  });

  it('shows open tunnels in the endpoint in-flight count of GET /upstreams until they close', async () => {
    expect(await inFlight('narrow')).toBe(0);
    const first = await echoingTunnel('narrow.internal');
    expect(await inFlight('narrow')).toBe(1);
    await echoingTunnel('narrow.internal');
    expect(await inFlight('narrow')).toBe(2);
    first.destroy();
    expect(await eventually(async () => (await inFlight('narrow')) === 1, 100, 20)).toBe(true);
  });
});
