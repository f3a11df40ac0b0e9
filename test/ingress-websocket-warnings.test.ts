/**
 * Issue 23, as a user sees it: the sidecar run as documented (`npm start --
 * --config FILE`) relays WebSockets and prints no deprecation warning.
 * http-proxy 1.18.1, which relays them, calls util._extend on every
 * WebSocket, and Node prints DEP0060 for it once per process; the sidecar
 * runs with --disable-warning=DEP0060, that code only. Any other warning is
 * still printed: a probe loaded into the sidecar's process
 * (NODE_OPTIONS=--import) emits a deprecation and a plain warning of its own,
 * and both must show on stderr.
 */
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOGGED_BASE, ROOT, spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { attachEchoServer, roundTrip, upgrade } from './helpers/websocket.ts';

const PROBE = pathToFileURL(join(ROOT, 'test/fixtures/warning-probe.mjs')).href;

describe('what `npm start` prints while it relays WebSockets', () => {
  let upstream: TestServer;
  let echo: ReturnType<typeof attachEchoServer>;
  let sidecar: SidecarProcess | undefined;

  beforeAll(async () => {
    upstream = await startHttpServer((_req, res) => res.end('plain'));
    echo = attachEchoServer(upstream.server);
  });
  afterAll(async () => {
    await sidecar?.stop();
    echo.wss.close();
    await upstream.close();
  });

  it('no DEP0060 after WebSockets, and the other warnings still printed', async () => {
    const config = writeConfig(`${LOGGED_BASE}
upstreams: { up: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: / }, upstream: up, websocket: true }
`);
    const options = `${process.env.NODE_OPTIONS ?? ''} --import=${PROBE}`.trim();
    sidecar = await spawnSidecar(['--config', config], { npm: true, env: { NODE_OPTIONS: options } });
    for (let i = 0; i < 2; i++) {
      const result = await upgrade(`ws://127.0.0.1:${sidecar.ingressPort}/chat/${i}`);
      if (result.kind !== 'open') throw new Error(`upgrade not open: ${JSON.stringify(result)}`);
      expect(await roundTrip(result.ws, 'hi')).toBe('echo:hi');
      result.ws.close();
    }
    expect(echo.requests).toHaveLength(2);
    expect(await sidecar.stop()).toBe(0);

    const warnings = sidecar
      .stderr()
      .split('\n')
      .filter((line) => /Warning/.test(line) && !line.startsWith('(Use `node --trace'));
    expect(warnings).toEqual([
      expect.stringMatching(/\[DEP_SIDECAR_PROBE\] DeprecationWarning: probe deprecation/),
      expect.stringMatching(/\[SIDECAR_PROBE\] Warning: probe warning/),
    ]);
  });
});
