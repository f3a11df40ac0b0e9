/**
 * The listener's `paths` options reach the listener: `rejectEncodedSlashes`
 * refuses %2F / %5C with 400, `mergeSlashes: false` keeps `//`, and
 * `normalize: false` routes the raw path (ingress here, egress the same key).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { rawExchange } from './helpers/raw.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

describe('listener paths options', () => {
  let upstream: TestServer;
  let strict: RunningSidecar;
  let raw: RunningSidecar;

  beforeAll(async () => {
    upstream = await startHttpServer((req, res) => {
      req.resume();
      res.end(`got ${req.url}`);
    });
    const config = (paths: string) => `${TEST_BASE}
upstreams:
  app: { endpoints: [${upstream.url}] }
ingress:
  listen: 127.0.0.1:0
  paths: ${paths}
  routes:
    - { match: { path: / }, upstream: app }
egress:
  listen: 127.0.0.1:0
  paths: ${paths}
  routes:
    - { match: { host: app.internal }, upstream: app }
`;
    strict = await startSidecar(config('{ mergeSlashes: false, rejectEncodedSlashes: true }'));
    raw = await startSidecar(config('{ normalize: false }'));
  });
  afterAll(async () => {
    await strict?.close();
    await raw?.close();
    await upstream?.close();
  });

  const get = (port: number, target: string) =>
    rawExchange(port, `GET ${target} HTTP/1.1\r\nHost: app.internal\r\nConnection: close\r\n\r\n`);

  it('rejectEncodedSlashes: %2F, %5C and a raw backslash are 400 bad_request, on ingress and egress', async () => {
    for (const port of [strict.sidecar.ingressPort!, strict.egressPort!]) {
      for (const target of ['/a%2fb', '/a%2Fb', '/a%5Cb', '/a\\b']) {
        const answer = await get(port, target);
        expect(answer, target).toMatch(/^HTTP\/1\.1 400 /);
        expect(answer, target).toContain('x-sidecar-error: bad_request');
      }
    }
  });

  it('mergeSlashes: false keeps repeated slashes but still removes dot segments', async () => {
    expect(await get(strict.sidecar.ingressPort!, '/a//b/./c')).toMatch(/\r\n\r\ngot \/a\/\/b\/c$/);
    expect(await get(strict.egressPort!, '/a//b/./c')).toMatch(/\r\n\r\ngot \/a\/\/b\/c$/);
  });

  it('normalize: false routes and forwards the path as it came', async () => {
    expect(await get(raw.sidecar.ingressPort!, '/a/../b//%41')).toMatch(/\r\n\r\ngot \/a\/\.\.\/b\/\/%41$/);
  });
});
