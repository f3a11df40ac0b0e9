import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { scriptedServer, upstreamsView, type ScriptedServer } from './helpers/misbehave.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

/** Breaker and ejection state live in the registry, keyed by upstream and endpoint: a reload that keeps the upstream keeps them. */
describe('resilience state across reloads', () => {
  let failing: ScriptedServer;
  let bad: ScriptedServer;
  let good: ScriptedServer;
  let sidecar: RunningSidecar;

  const config = (extraRoute: string, openFor = '60s') => `${TEST_BASE}
upstreams:
  fragile:
    endpoints: [${failing.url}]
    breaker: { minRequests: 3, openFor: ${openFor} }
  pair:
    endpoints: [${bad.url}, ${good.url}]
    outlier: { consecutiveErrors: 2, ejectFor: 60s }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: /pair }, upstream: pair }
    - { match: { path: / }, upstream: fragile }
${extraRoute}`;

  beforeAll(async () => {
    failing = await scriptedServer('failing', [{ status: 503 }]);
    bad = await scriptedServer('bad', ['reset']);
    good = await scriptedServer('good', ['ok']);
    sidecar = await startSidecar(config(''));
  });
  afterAll(async () => {
    await sidecar.close();
    await Promise.all([failing.close(), bad.close(), good.close()]);
  });

  async function get(path: string): Promise<number> {
    const response = await request(sidecar.url(path));
    await response.body.text();
    return response.statusCode;
  }
  async function reload(yaml: string): Promise<void> {
    writeFileSync(sidecar.file, yaml);
    const response = await request(sidecar.admin('/reload'), { method: 'POST' });
    expect(response.statusCode).toBe(200);
    await response.body.text();
  }
  const view = () => upstreamsView(sidecar.admin('/upstreams'));

  it('an open breaker and an ejection survive a reload that keeps their upstreams', async () => {
    for (let i = 0; i < 3; i++) expect(await get('/')).toBe(503);
    for (let i = 0; i < 4; i++) await get('/pair');
    expect((await view()).fragile.breaker).toBe('open');
    expect((await view()).pair.endpoints.map((e) => e.ejected)).toEqual([true, false]);

    await reload(config('    - { match: { path: /other }, upstream: fragile }\n'));
    expect((await view()).fragile.breaker).toBe('open');
    expect((await view()).pair.endpoints.map((e) => e.ejected)).toEqual([true, false]);
    const hits = failing.hits();
    expect(await get('/')).toBe(503);
    expect(failing.hits()).toBe(hits); // still answered by the open breaker
  });

  it('changed breaker settings start a fresh breaker', async () => {
    await reload(config('', '30s'));
    expect((await view()).fragile.breaker).toBe('closed');
  });
});
