/**
 * Admin details (issue 23): a known path asked with the wrong method is 405
 * with `Allow` (not 404, which says the path does not exist), and
 * GET /upstreams says "none" for an upstream without a breaker rather than
 * pretending it has a closed one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { echoServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

describe('admin methods and breaker state', () => {
  let echo: TestServer;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    echo = await echoServer();
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  guarded: { endpoints: [${echo.url}], breaker: { minRequests: 5 } }
  plain: { endpoints: [${echo.url}] }
`);
  });
  afterAll(async () => {
    await sidecar.close();
    await echo.close();
  });

  async function ask(method: string, path: string) {
    const response = await request(sidecar.admin(path), { method });
    return { status: response.statusCode, allow: response.headers.allow, type: response.headers['content-type'], text: await response.body.text() };
  }

  it('answers a wrong method on a known path with 405 and Allow, and a JSON body', async () => {
    for (const [method, path, allow] of [
      ['POST', '/healthz', 'GET, HEAD'],
      ['DELETE', '/config', 'GET, HEAD'],
      ['PUT', '/metrics', 'GET, HEAD'],
      ['GET', '/reload', 'POST'],
      ['PUT', '/reload', 'POST'],
    ] as const) {
      const answer = await ask(method, path);
      expect(answer.status, `${method} ${path}`).toBe(405);
      expect(answer.allow, `${method} ${path}`).toBe(allow);
      expect(answer.type).toBe('application/json');
      expect(JSON.parse(answer.text)).toMatchObject({ error: 'method_not_allowed' });
    }
  });

  it('still answers HEAD on a GET path, and 404 on an unknown path', async () => {
    expect((await ask('HEAD', '/healthz')).status).toBe(200);
    expect((await ask('GET', '/nope')).status).toBe(404);
    expect((await ask('POST', '/nope')).status).toBe(404);
  });

  it('says "none" for an upstream without a breaker and the state of one with a breaker', async () => {
    const body = JSON.parse((await ask('GET', '/upstreams')).text) as { upstreams: Record<string, { breaker: string }> };
    expect(body.upstreams.guarded.breaker).toBe('closed');
    expect(body.upstreams.plain.breaker).toBe('none');
  });
});
