/**
 * What a started sidecar has loaded (issue 22, docs/performance.md, Memory): not
 * Node's bundled undici (an ES import of node:http reads its lazy WebSocket
 * getters and loads it, about 13 MB: src/net/node-http.ts), and not undici's
 * index (fetch, WebSocket, cache stores: about 13 MB more; src/upstream/undici.ts).
 * A real sidecar process with ingress, egress, a breaker and retries, asked
 * for its module list once it is listening.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { ROOT, spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

it('a started sidecar has loaded neither Node\'s bundled undici nor undici\'s index', async () => {
  const upstream: TestServer = await startHttpServer((_req, res) => res.end('hello'));
  cleanup.push(() => upstream.close());
  const config = writeConfig(`
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: true }
upstreams:
  app:
    endpoints: [http://127.0.0.1:${upstream.port}]
    breaker: { errorRate: 0.5, minRequests: 20, window: 10s, openFor: 30s }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: app, match: { path: / }, upstream: app, retry: { attempts: 2 } }
egress:
  listen: 127.0.0.1:0
  routes:
    - { name: local, match: { host: 127.0.0.1 } }
`);
  const out = join(config, '..', 'loaded.txt');
  const sidecar: SidecarProcess = await spawnSidecar(['--config', config], {
    nodeArgs: ['--import', join(ROOT, 'test/fixtures/loaded-modules.mjs')],
    env: { LOADED_MODULES_OUT: out },
  });
  cleanup.push(() => sidecar.stop());
  // A proxied request first: what the first request loads counts too.
  expect((await fetch(`http://127.0.0.1:${sidecar.ingressPort}/`)).status).toBe(200);
  sidecar.child.kill('SIGUSR2');
  for (let i = 0; i < 100 && !existsSync(out); i++) await new Promise((r) => setTimeout(r, 50));
  const loaded = readFileSync(out, 'utf8').split('\n');
  expect(loaded).toContain('NativeModule http'); // the list is the real one
  expect(loaded.filter((name) => name.includes('internal/deps/undici'))).toEqual([]);
  const undiciFiles = loaded.filter((name) => name.includes('/node_modules/undici/'));
  expect(undiciFiles.some((name) => name.endsWith('/lib/dispatcher/pool.js'))).toBe(true);
  expect(undiciFiles.filter((name) => name.endsWith('/undici/index.js') || name.includes('/lib/web/') || name.includes('/lib/cache/'))).toEqual([]);
});
