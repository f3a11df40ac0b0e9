/**
 * A WebSocket upgrade is a request like any other for the SPEC's
 * "Request normalisation and trust": its head is checked (a second Host is
 * 400) and its path is normalised before routing, then matched, rewritten
 * and forwarded as normalised (a path above the root is 400), on ingress and
 * through egress. Upgrades reach neither the listeners' request checks nor
 * the request dispatch, so they are checked on their own path. X-Forwarded-*
 * from a client outside `trustedProxies` are replaced, not appended to. Raw
 * sockets: a WebSocket client would normalise the path itself.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawExchange } from './helpers/raw.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { answerHead, upgradeHead } from './helpers/websocket.ts';

describe('WebSocket upgrade heads and paths', () => {
  let upstream: TestServer;
  let sidecar: RunningSidecar;
  /** Request targets of the upgrades that reached the upstream. */
  const reached: string[] = [];
  let lastHeaders: IncomingHttpHeaders = {};

  beforeAll(async () => {
    upstream = await startHttpServer((_req, res) => res.end('plain'));
    upstream.server.on('upgrade', (req, socket: Socket) => {
      reached.push(req.url ?? '');
      lastHeaders = req.headers;
      socket.on('error', () => undefined);
      socket.end('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    });
    sidecar = await startSidecar(`${TEST_BASE}
upstreams: { up: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: ws, match: { path: /ws/ }, upstream: up, websocket: true }
    - { name: rest, match: { path: / }, upstream: up }
egress:
  listen: 127.0.0.1:0
  routes:
    - { name: chat, match: { host: chat.internal, path: /v1/ }, upstream: up, rewrite: { stripPrefix: /v1 } }
`);
  });
  afterAll(async () => {
    await sidecar.close();
    await upstream.close();
  });

  const ingressPort = () => sidecar.sidecar.ingressPort!;

  /** The status line of the answer to `head` on `port`. */
  async function statusOf(port: number, head: string): Promise<string> {
    const { head: answer, socket } = await answerHead(port, head);
    socket.destroy();
    return answer.split('\r\n')[0];
  }

  it('ingress: routes, rewrites and forwards the normalised path', async () => {
    reached.length = 0;
    expect(await statusOf(ingressPort(), upgradeHead('/x/../ws//chat/./room'))).toBe('HTTP/1.1 101 Switching Protocols');
    expect(reached).toEqual(['/ws/chat/room']);
  });

  it('ingress: a path above the root is 400 bad_request, and reaches nobody', async () => {
    reached.length = 0;
    const text = await rawExchange(ingressPort(), upgradeHead('/ws/../../etc/passwd'));
    expect(text).toMatch(/^HTTP\/1\.1 400 /);
    expect(text).toMatch(/x-sidecar-error: bad_request/i);
    expect(reached).toEqual([]);
  });

  it('ingress: a second Host is 400 bad_request', async () => {
    reached.length = 0;
    const text = await rawExchange(ingressPort(), upgradeHead('/ws/chat', ['Host: other.example']));
    expect(text).toMatch(/^HTTP\/1\.1 400 /);
    expect(text).toMatch(/more than one Host/);
    expect(reached).toEqual([]);
  });

  it('ingress: X-Forwarded-* from a client that is no trusted proxy are replaced, not passed on', async () => {
    reached.length = 0;
    const spoofed = ['X-Forwarded-For: 203.0.113.9', 'X-Forwarded-Host: evil.example', 'X-Forwarded-Proto: https'];
    expect(await statusOf(ingressPort(), upgradeHead('/ws/chat', spoofed))).toBe('HTTP/1.1 101 Switching Protocols');
    expect(reached).toEqual(['/ws/chat']);
    expect(lastHeaders).toMatchObject({ 'x-forwarded-for': '127.0.0.1', 'x-forwarded-host': 'client.example', 'x-forwarded-proto': 'http' });
  });

  it('egress: an absolute-form upgrade is routed and forwarded on its normalised path', async () => {
    reached.length = 0;
    const head = upgradeHead('http://chat.internal/x/../v1//room', [], 'chat.internal');
    expect(await statusOf(sidecar.egressPort!, head)).toBe('HTTP/1.1 101 Switching Protocols');
    expect(reached).toEqual(['/room']);
  });

  it('egress: a second Host is 400 bad_request', async () => {
    reached.length = 0;
    const text = await rawExchange(sidecar.egressPort!, upgradeHead('http://chat.internal/v1/room', ['Host: other.example'], 'chat.internal'));
    expect(text).toMatch(/^HTTP\/1\.1 400 /);
    expect(text).toMatch(/more than one Host/);
    expect(reached).toEqual([]);
  });
});
