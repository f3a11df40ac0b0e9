/**
 * Rate limits on egress (issue 19): an app, whatever its code does, is held
 * to a partner's quota. Node's fetch through HTTP_PROXY (NODE_USE_ENV_PROXY,
 * so http:// goes inside `CONNECT host:80`) gets exactly the burst through
 * and 429s after: each request inside the tunnel counts, not the tunnel
 * that carries them. A blind CONNECT tunnel is one request: beyond the
 * burst, the CONNECT itself is answered 429 before any `200`. So is a
 * WebSocket upgrade through egress.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { startTcpServer } from './helpers/raw.ts';
import { NODE, clientEnv, openConnect, run } from './helpers/egress.ts';
import { absoluteFormAgent, attachEchoServer, upgrade } from './helpers/websocket.ts';

describe('rateLimit on egress', () => {
  let partner: TestServer;
  let echo: Awaited<ReturnType<typeof startTcpServer>>;
  let sidecar: RunningSidecar;
  let partnerHits = 0;
  let chat: TestServer;
  let chatEcho: ReturnType<typeof attachEchoServer>;

  beforeAll(async () => {
    partner = await startHttpServer((_req, res) => {
      partnerHits++;
      res.end('quota ok');
    });
    chat = await startHttpServer((_req, res) => res.end('plain'));
    chatEcho = attachEchoServer(chat.server);
    echo = await startTcpServer((socket) => socket.pipe(socket));
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  partner: { endpoints: [${partner.url}] }
  secure: { endpoints: [http://127.0.0.1:${echo.port}] }
  chat: { endpoints: [${chat.url}] }
egress:
  listen: 127.0.0.1:0
  routes:
    - { name: partner, match: { host: api.partner.example }, upstream: partner, rateLimit: { requests: 1, per: 1m, burst: 4 } }
    - { name: secure, match: { host: secure.partner.example, ports: [443] }, upstream: secure, rateLimit: { requests: 1, per: 1m, burst: 2 } }
    - { name: chat, match: { host: chat.partner.example }, upstream: chat, rateLimit: { requests: 1, per: 1m, burst: 1 } }
`);
  });
  afterAll(async () => {
    await sidecar?.close();
    await partner?.close();
    await echo?.close();
    chatEcho?.wss.close();
    await chat?.close();
  });

  it("holds an app's fetch calls at the partner's quota", async () => {
    const script = [
      'const statuses = [];',
      'for (let i = 0; i < 7; i++) {',
      "  const response = await fetch('http://api.partner.example/charge');",
      '  await response.arrayBuffer();',
      '  statuses.push(response.status);',
      '}',
      'console.log(JSON.stringify(statuses));',
    ].join('\n');
    const result = await run(NODE, ['--input-type=module', '-e', script], clientEnv({ HTTP_PROXY: sidecar.egressUrl!, NODE_USE_ENV_PROXY: '1' }));
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual([200, 200, 200, 200, 429, 429, 429]);
    expect(partnerHits).toBe(4);
  });

  it('counts a blind tunnel as one request, and refuses the CONNECT over the limit with 429', async () => {
    for (let i = 0; i < 2; i++) {
      const tunnel = await openConnect(sidecar.egressPort!, 'secure.partner.example:443');
      expect(tunnel.status).toBe(200);
      // A TLS-looking first byte makes it a blind tunnel: the echo server sends it back.
      const echoed = new Promise<string>((resolve) => tunnel.socket.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1'))));
      tunnel.socket.write('\x16ping');
      tunnel.socket.resume();
      expect(await echoed).toBe('\x16ping');
      tunnel.socket.destroy();
    }
    const refused = await openConnect(sidecar.egressPort!, 'secure.partner.example:443');
    expect(refused.status).toBe(429);
    expect(refused.response).toMatch(/x-sidecar-error: rate_limited/i);
    expect(refused.response).toMatch(/retry-after: \d+/i);
  });

  it('counts a WebSocket upgrade through egress as one request, and answers the next 429', async () => {
    const first = await upgrade('ws://chat.partner.example/room', { agent: absoluteFormAgent(sidecar.egressPort!) });
    if (first.kind !== 'open') throw new Error(`upgrade not open: ${JSON.stringify(first)}`);
    const second = await upgrade('ws://chat.partner.example/room', { agent: absoluteFormAgent(sidecar.egressPort!) });
    expect(second).toMatchObject({ kind: 'answered', status: 429, error: 'rate_limited' });
    first.ws.close();
  });
});
