/**
 * What the sidecar makes of a WebSocket upgrade that http-proxy relays: the
 * head sent upstream is rebuilt like a proxied request's (route request
 * rules, hop-by-hop headers gone, Via, X-Forwarded-For, x-request-id) on the
 * exact rewritten path; the 101 gets the route's response rules; an upstream
 * that refuses the upgrade has its answer passed on readable (decoded body,
 * `Connection: close`). Raw sockets on both sides, to see the bytes.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VIA_TOKEN } from '../src/proxy/headers.ts';
import { rawExchange } from './helpers/raw.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { answerHead, headerLines, read, upgradeHead, WEBSOCKET_KEY } from './helpers/websocket.ts';

describe('WebSocket upgrades relayed by http-proxy', () => {
  let upstream: TestServer;
  let sidecar: RunningSidecar;
  const seen: Array<{ url: string; headers: IncomingHttpHeaders }> = [];

  beforeAll(async () => {
    upstream = await startHttpServer((_req, res) => res.end('plain'));
    upstream.server.on('upgrade', (req, socket: Socket) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      socket.on('error', () => undefined);
      if (req.url?.startsWith('/refuse')) {
        socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nx-upstream-secret: s\r\n\r\n2\r\nno\r\n2\r\npe\r\n0\r\n\r\n');
        return;
      }
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nx-handshake: yes\r\nx-upstream-secret: s\r\n\r\n');
      socket.pipe(socket); // echoes the bytes after the upgrade
    });
    sidecar = await startSidecar(`${TEST_BASE}
upstreams: { up: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - name: rel
      match: { path: /rel/ }
      upstream: up
      websocket: true
      rewrite: { stripPrefix: /rel }
      headers:
        request: { add: { x-from: sidecar }, remove: [x-internal] }
        response: { add: { x-served-by: sidecar }, remove: [x-upstream-secret] }
`);
  });
  afterAll(async () => {
    await sidecar.close();
    await upstream.close();
  });

  it('sends the head rebuilt like a proxied request on the exact rewritten path, and passes the 101 on with the route response rules', async () => {
    seen.length = 0;
    const extra = ['Connection: Upgrade, x-hop', 'x-hop: dropped', 'x-internal: secret', 'x-request-id: relay-head'];
    const { head, socket } = await answerHead(sidecar.sidecar.ingressPort!, upgradeHead('/rel/room/http:/x?q=1', extra));
    try {
      expect(head.split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
      const headers = headerLines(head);
      expect(headers.get('x-handshake')).toEqual(['yes']);
      expect(headers.get('x-served-by')).toEqual(['sidecar']);
      expect(headers.get('x-request-id')).toEqual(['relay-head']);
      expect(headers.has('x-upstream-secret')).toBe(false);

      expect(seen).toHaveLength(1);
      expect(seen[0].url).toBe('/room/http:/x?q=1');
      expect(seen[0].headers).toMatchObject({
        host: 'client.example',
        connection: 'upgrade',
        upgrade: 'websocket',
        'sec-websocket-key': WEBSOCKET_KEY,
        'x-from': 'sidecar',
        'x-forwarded-for': '127.0.0.1',
        'x-request-id': 'relay-head',
      });
      expect(seen[0].headers.via).toContain(VIA_TOKEN);
      expect(seen[0].headers['x-hop']).toBeUndefined();
      expect(seen[0].headers['x-internal']).toBeUndefined();

      socket.write('ping');
      expect(await read(socket, 4)).toBe('ping');
    } finally {
      socket.destroy();
    }
  });

  it('relays an upgrade that carries Expect: 100-continue, without it', async () => {
    seen.length = 0;
    const { head, socket } = await answerHead(sidecar.sidecar.ingressPort!, upgradeHead('/rel/expecting', ['Expect: 100-continue']));
    socket.destroy();
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
    expect(seen.map((request) => [request.url, request.headers.expect])).toEqual([['/expecting', undefined]]);
  });

  it('passes a refused upgrade on readable: status, decoded body, Connection: close, route response rules, x-request-id', async () => {
    const text = await rawExchange(sidecar.sidecar.ingressPort!, upgradeHead('/rel/refuse', ['x-request-id: relay-refused']), { timeoutMs: 5_000 });
    const end = text.indexOf('\r\n\r\n');
    const head = text.slice(0, end);
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 403 Forbidden');
    const headers = headerLines(head);
    expect(headers.get('connection')).toEqual(['close']);
    expect(headers.get('x-served-by')).toEqual(['sidecar']);
    expect(headers.get('x-request-id')).toEqual(['relay-refused']);
    expect(headers.has('transfer-encoding')).toBe(false);
    expect(headers.has('x-upstream-secret')).toBe(false);
    expect(text.slice(end + 4)).toBe('nope');
  });
});
