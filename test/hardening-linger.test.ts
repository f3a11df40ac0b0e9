/**
 * A socket the sidecar answered with an error (a refused CONNECT, a refused
 * WebSocket upgrade, a request the parser rejected) is closed by the sidecar
 * after a short linger, whatever the client does: a client that keeps its
 * half of the connection open and goes on sending must not hold a socket for
 * ever. Before, the sidecar ended its side and waited for the client's FIN,
 * which such a client never sends.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedWithin } from './helpers/egress.ts';
import { echoServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

/** Generous: the linger is 2 s; this only has to tell "closed" from "open for ever". */
const BOUND_MS = 8_000;

/** A client that never closes its half: it sends `head`, then keeps sending a byte every 100 ms. */
function stubbornClient(port: number, head: string): { socket: Socket; answer: Promise<string> } {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  let text = '';
  const answer = new Promise<string>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.includes('\r\n\r\n')) resolve(text);
    });
    socket.once('close', () => resolve(text));
  });
  socket.on('error', () => undefined);
  socket.write(head);
  const drip = setInterval(() => {
    if (socket.writable) socket.write('x');
  }, 100);
  socket.once('close', () => clearInterval(drip));
  return { socket, answer };
}

describe('answered sockets are closed after a short linger', () => {
  let upstream: TestServer;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    upstream = await echoServer();
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  app: { endpoints: ['${upstream.url}'] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: app, match: { path: / }, upstream: app }
egress:
  listen: 127.0.0.1:0
  routes:
    - { name: only, match: { host: allowed.example } }
`);
  });

  afterAll(async () => {
    await sidecar?.close();
    await upstream?.close();
  });

  it('a refused CONNECT', async () => {
    const { socket, answer } = stubbornClient(sidecar.egressPort!, 'CONNECT denied.example:443 HTTP/1.1\r\nHost: denied.example:443\r\n\r\n');
    expect(await answer).toMatch(/^HTTP\/1\.1 403 /);
    expect(await closedWithin(socket, BOUND_MS)).toBe(true);
  });

  it('a refused WebSocket upgrade', async () => {
    const { socket, answer } = stubbornClient(
      Number(new URL(sidecar.url()).port),
      'GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    expect(await answer).toMatch(/^HTTP\/1\.1 404 /);
    expect(await closedWithin(socket, BOUND_MS)).toBe(true);
  });

  it('a request the parser rejected, with the client still writing', async () => {
    const { socket, answer } = stubbornClient(Number(new URL(sidecar.url()).port), 'GARBAGE\r\n\r\n');
    expect(await answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(await closedWithin(socket, BOUND_MS)).toBe(true);
  });
});
