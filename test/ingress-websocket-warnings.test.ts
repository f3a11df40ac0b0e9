/**
 * Issue 23, as a user sees it: the sidecar started as documented relays
 * WebSockets and prints no deprecation warning. http-proxy 1.18.1, which
 * relays them, calls util._extend on every WebSocket, and Node prints DEP0060
 * for it once per process; the sidecar runs with --disable-warning=DEP0060,
 * that code only. Any other warning is still printed: a probe loaded into the
 * sidecar's process (NODE_OPTIONS=--import) emits a deprecation and a plain
 * warning of its own, and both must show on stderr. Started three ways:
 * `npm start`, and the `sidecar` command (bin/sidecar.js) run by a Node 24
 * and with the user's PATH, whose `node` may be older (then the command runs
 * the Node 24 the package brings).
 */
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userEnv } from '../scripts/package-install.ts';
import { NODE } from './helpers/egress.ts';
import { LOGGED_BASE, ROOT, spawnSidecar, writeConfig, type SpawnOptions } from './helpers/process.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { attachEchoServer, roundTrip, upgrade } from './helpers/websocket.ts';

const PROBE = pathToFileURL(join(ROOT, 'test/fixtures/warning-probe.mjs')).href;
const BIN = join(ROOT, 'bin/sidecar.js');

const LAUNCHES: ReadonlyArray<[string, Pick<SpawnOptions, 'command'>, NodeJS.ProcessEnv]> = [
  ['npm start --', { command: { file: 'npm', args: ['start', '--'], cwd: ROOT } }, process.env],
  ['the sidecar command, run by Node 24', { command: { file: NODE, args: [BIN], cwd: ROOT } }, process.env],
  ['the sidecar command, with the user\'s PATH', { command: { file: BIN, args: [], cwd: ROOT } }, userEnv()],
];

describe('what the sidecar prints while it relays WebSockets', () => {
  let upstream: TestServer;
  let echo: ReturnType<typeof attachEchoServer>;
  let config: string;

  beforeAll(async () => {
    upstream = await startHttpServer((_req, res) => res.end('plain'));
    echo = attachEchoServer(upstream.server);
    config = writeConfig(`${LOGGED_BASE}
upstreams: { up: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: / }, upstream: up, websocket: true }
`);
  });
  afterAll(async () => {
    echo.wss.close();
    await upstream.close();
  });

  it.each(LAUNCHES)('%s: no DEP0060 after WebSockets, and the other warnings still printed', async (_name, launch, baseEnv) => {
    const options = `${baseEnv.NODE_OPTIONS ?? ''} --import=${PROBE}`.trim();
    const sidecar = await spawnSidecar(['--config', config], { ...launch, env: { ...baseEnv, NODE_OPTIONS: options } });
    try {
      for (let i = 0; i < 2; i++) {
        const result = await upgrade(`ws://127.0.0.1:${sidecar.ingressPort}/chat/${i}`);
        if (result.kind !== 'open') throw new Error(`upgrade not open: ${JSON.stringify(result)}`);
        expect(await roundTrip(result.ws, 'hi')).toBe('echo:hi');
        result.ws.close();
      }
    } finally {
      await sidecar.stop(); // the whole process group; stderr is complete once its leader has exited
    }
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
