/**
 * WebSockets through egress: an app's `ws://` client via HTTP_PROXY has its
 * Upgrade relayed under the matched egress route, not stripped, whether it
 * comes in absolute-form (`GET http://host/ws` with `Upgrade: websocket`) or
 * inside a CONNECT tunnel that carries HTTP: to a logical name's upstream, or
 * to a pass-through destination with the same destination checks as any
 * egress request (no route: 403; the sidecar itself: 403, for an IP literal
 * and for a name). Clients: `ws` through an absolute-form proxy agent, and
 * undici's WebSocket (Node's own) through its ProxyAgent, tunnelling or not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProxyAgent, WebSocket as UndiciWebSocket } from 'undici';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { VIA_TOKEN } from '../src/proxy/headers.ts';
import { absoluteFormAgent, attachEchoServer, roundTrip, upgrade } from './helpers/websocket.ts';

/** Opens an undici WebSocket through the egress ProxyAgent; resolves with its first message and the echo of `ping`. */
async function undiciEcho(url: string, proxy: ProxyAgent): Promise<string[]> {
  const ws = new UndiciWebSocket(url, { dispatcher: proxy } as unknown as string[]);
  const messages: string[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no WebSocket in 5 s')), 5_000);
      ws.addEventListener('message', (event) => {
        messages.push(String(event.data));
        if (messages.length === 1) ws.send('ping');
        if (messages.length === 2) {
          clearTimeout(timer);
          resolve();
        }
      });
      ws.addEventListener('error', () => {
        clearTimeout(timer);
        reject(new Error(`WebSocket to ${url} failed`));
      });
    });
  } finally {
    ws.close();
  }
  return messages;
}

describe('WebSockets through egress', () => {
  let upstream: TestServer;
  let echo: ReturnType<typeof attachEchoServer>;
  let sidecar: RunningSidecar;
  /** The same, with `egress.auth`. */
  let guarded: RunningSidecar;
  let proxy: number;

  beforeAll(async () => {
    upstream = await startHttpServer((_req, res) => res.end('plain'));
    echo = attachEchoServer(upstream.server);
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  chat: { endpoints: [${upstream.url}] }
egress:
  listen: 127.0.0.1:0
  routes:
    - { name: chat, match: { host: chat.internal, path: /v1/ }, upstream: chat, rewrite: { stripPrefix: /v1 } }
    - { name: loopback, match: { host: 127.0.0.1 } }
    - { name: local, match: { host: localhost } }
`);
    proxy = sidecar.egressPort!;
    guarded = await startSidecar(`${TEST_BASE}
upstreams:
  chat: { endpoints: [${upstream.url}] }
egress:
  listen: 127.0.0.1:0
  auth: { user: app, password: s3cret }
  routes:
    - { match: { host: chat.internal }, upstream: chat }
`);
  });
  afterAll(async () => {
    await Promise.all([sidecar.close(), guarded.close()]);
    echo.wss.close();
    await upstream.close();
  });

  it('relays an absolute-form upgrade (ws client, HTTP proxy agent) to a logical name, with the route policy and forwarding headers', async () => {
    const result = await upgrade('ws://chat.internal/v1/room', { agent: absoluteFormAgent(proxy) });
    if (result.kind !== 'open') throw new Error(`upgrade not open: ${JSON.stringify(result)}`);
    expect(result.hello).toBe('hello /room');
    expect(await roundTrip(result.ws, 'ping')).toBe('echo:ping');
    result.ws.close();
    const seen = echo.requests.at(-1)!;
    expect(seen['x-forwarded-host']).toBe('chat.internal');
    expect(seen.via).toContain(VIA_TOKEN);
    expect(seen['x-request-id']).toMatch(/.+/);
    expect(seen.upgrade).toBe('websocket');
  });

  it('relays an upgrade inside a CONNECT tunnel that carries HTTP (undici WebSocket, tunnelling ProxyAgent)', async () => {
    const tunnelling = new ProxyAgent({ uri: sidecar.egressUrl!, proxyTunnel: true });
    try {
      expect(await undiciEcho('ws://chat.internal/v1/tunnelled', tunnelling)).toEqual(['hello /tunnelled', 'echo:ping']);
    } finally {
      await tunnelling.close();
    }
  });

  it('relays to a pass-through destination, absolute-form and inside CONNECT', async () => {
    for (const proxyTunnel of [false, true]) {
      const agent = new ProxyAgent({ uri: sidecar.egressUrl!, proxyTunnel });
      try {
        expect(await undiciEcho(`ws://127.0.0.1:${upstream.port}/direct`, agent)).toEqual(['hello /direct', 'echo:ping']);
      } finally {
        await agent.close();
      }
    }
  });

  it('answers 403 destination_denied where no route allows the destination', async () => {
    const result = await upgrade('ws://elsewhere.example/ws', { agent: absoluteFormAgent(proxy) });
    expect(result).toMatchObject({ kind: 'answered', status: 403, error: 'destination_denied' });
  });

  it('refuses a WebSocket aimed at the sidecar itself, by IP literal and by name (checked on the resolved address)', async () => {
    for (const host of ['127.0.0.1', 'localhost']) {
      const result = await upgrade(`ws://${host}:${proxy}/ws`, { agent: absoluteFormAgent(proxy) });
      expect(result).toMatchObject({ kind: 'answered', status: 403, error: 'destination_denied' });
      if (result.kind === 'answered') expect(result.body).toMatch(/loop/);
    }
  });

  it('asks for credentials (407) and relays once they are given; the header is not passed on', async () => {
    const agent = absoluteFormAgent(guarded.egressPort!);
    expect(await upgrade('ws://chat.internal/ws', { agent })).toMatchObject({ kind: 'answered', status: 407, error: 'proxy_auth_required' });
    const authorization = `Basic ${Buffer.from('app:s3cret').toString('base64')}`;
    const result = await upgrade('ws://chat.internal/ws', { agent, headers: { 'proxy-authorization': authorization } });
    expect(result.kind).toBe('open');
    if (result.kind === 'open') result.ws.close();
    expect(echo.requests.at(-1)!['proxy-authorization']).toBeUndefined();
  });
});
