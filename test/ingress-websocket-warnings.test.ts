/**
 * Issue 23: the first WebSocket through the sidecar printed Node's
 * deprecation warning for `util._extend` (DEP0060), from http-proxy. The
 * upgrade path now makes no deprecated call.
 * (Each test file runs in a process of its own, where these warnings, printed
 * once per process, have not been printed yet.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { attachEchoServer, roundTrip, upgrade } from './helpers/websocket.ts';

describe('WebSocket upgrades print no deprecation warning', () => {
  let upstream: TestServer;
  let echo: ReturnType<typeof attachEchoServer>;
  let sidecar: RunningSidecar;
  const warnings: Array<{ name: string; code: string | undefined; message: string }> = [];
  const onWarning = (warning: Error & { code?: string }) => warnings.push({ name: warning.name, code: warning.code, message: warning.message });

  beforeAll(async () => {
    process.on('warning', onWarning);
    upstream = await startHttpServer((_req, res) => res.end('plain'));
    echo = attachEchoServer(upstream.server);
    sidecar = await startSidecar(`${TEST_BASE}
upstreams: { up: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: / }, upstream: up, websocket: true }
`);
  });
  afterAll(async () => {
    process.off('warning', onWarning);
    await sidecar.close();
    echo.wss.close();
    await upstream.close();
  });

  it('relays WebSockets without a DeprecationWarning', async () => {
    for (let i = 0; i < 2; i++) {
      const result = await upgrade(sidecar.url(`/chat/${i}`).replace('http:', 'ws:'));
      if (result.kind !== 'open') throw new Error(`upgrade not open: ${JSON.stringify(result)}`);
      expect(await roundTrip(result.ws, 'hi')).toBe('echo:hi');
      result.ws.close();
    }
    await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
    expect(warnings.filter((warning) => warning.name === 'DeprecationWarning')).toEqual([]);
  });
});
