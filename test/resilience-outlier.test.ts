import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { eventually, scriptedServer, upstreamsView, type ScriptedServer } from './helpers/misbehave.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

describe('outlier ejection (passive health)', () => {
  let bad: ScriptedServer;
  let good: ScriptedServer;
  let worseA: ScriptedServer;
  let worseB: ScriptedServer;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    bad = await scriptedServer('bad', [{ status: 500 }]);
    good = await scriptedServer('good', ['ok']);
    worseA = await scriptedServer('worse-a', ['reset']);
    worseB = await scriptedServer('worse-b', ['reset']);
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  pair:
    endpoints: [${bad.url}, ${good.url}]
    outlier: { consecutiveErrors: 3, ejectFor: 1s, maxEjectedPercent: 50 }
  broken:
    endpoints: [${worseA.url}, ${worseB.url}]
    outlier: { consecutiveErrors: 2, ejectFor: 30s, maxEjectedPercent: 100 }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: /broken }, upstream: broken }
    - { match: { path: / }, upstream: pair }
`);
  });
  afterAll(async () => {
    await sidecar.close();
    await Promise.all([bad.close(), good.close(), worseA.close(), worseB.close()]);
  });

  async function get(path = '/'): Promise<number> {
    const response = await request(sidecar.url(path));
    await response.body.text();
    return response.statusCode;
  }
  const endpointsOf = async (name: string) => (await upstreamsView(sidecar.admin('/upstreams')))[name].endpoints;

  it('moves traffic away from an endpoint that failed consecutiveErrors times, and back after ejectFor', async () => {
    for (let i = 0; i < 6; i++) await get(); // round-robin: three tries each
    expect(bad.hits()).toBe(3);
    expect((await endpointsOf('pair')).map((e) => e.ejected)).toEqual([true, false]);

    const badHits = bad.hits();
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push(await get());
    expect(statuses.every((status) => status === 200)).toBe(true);
    expect(bad.hits()).toBe(badHits);

    // Back after ejectFor (1s): poll with traffic, bounded.
    const back = await eventually(async () => {
      await get();
      return bad.hits() > badHits;
    }, 60, 50);
    expect(back).toBe(true);
    expect((await endpointsOf('pair'))[0].ejected).toBe(false);
  });

  it('a second ejection follows the next run of failures', async () => {
    bad.setScript([{ status: 500 }]);
    for (let i = 0; i < 8 && !(await endpointsOf('pair'))[0].ejected; i++) await get();
    expect((await endpointsOf('pair'))[0].ejected).toBe(true);
  });

  it('never ejects the last eligible endpoint, even with maxEjectedPercent 100', async () => {
    for (let i = 0; i < 10; i++) expect(await get('/broken')).toBe(502);
    const ejected = (await endpointsOf('broken')).filter((e) => e.ejected);
    expect(ejected).toHaveLength(1);
  });
});
