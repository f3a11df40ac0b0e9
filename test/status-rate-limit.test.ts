/**
 * The status page counts what a route's rate limit refused (issue 19 on the
 * status page of issue 20): N requests over a limit of `burst` show as
 * N - burst rate-limited on that route, and a `mode: shadow` limit's
 * over-the-limit requests (let through) apart; other routes show 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { echoServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

interface Route {
  name: string;
  total: { requests: number };
  rateLimited: { limited: number; shadow: number };
}

describe('status: rate-limited counts', () => {
  let app: TestServer;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    app = await echoServer();
    sidecar = await startSidecar(`${TEST_BASE}
upstreams: { app: { endpoints: [${app.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: limited, match: { path: /limited }, upstream: app, rateLimit: { requests: 1, per: 1h, burst: 3 } }
    - { name: shadowed, match: { path: /shadowed }, upstream: app, rateLimit: { requests: 1, per: 1h, burst: 2, mode: shadow } }
    - { name: free, match: { path: / }, upstream: app }
`);
  });
  afterAll(async () => {
    await sidecar?.close();
    await app?.close();
  });

  const send = async (path: string) => {
    const response = await request(sidecar.url(path));
    await response.body.dump();
    return response.statusCode;
  };

  it('/status.json and the page show per route the requests the limit refused, and shadow ones apart', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 8; i++) codes.push(await send('/limited'));
    expect(codes.filter((code) => code === 429)).toHaveLength(5);
    for (let i = 0; i < 6; i++) expect(await send('/shadowed')).toBe(200);
    expect(await send('/free')).toBe(200);

    let routes: Route[] = [];
    // A request counts when its response closes on the server side: wait (bounded) for all 15.
    for (let round = 0; round < 100; round++) {
      routes = ((await (await request(sidecar.admin('/status.json'))).body.json()) as { routes: Route[] }).routes;
      if (routes.reduce((sum, route) => sum + route.total.requests, 0) >= 15) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const byName = new Map(routes.map((route) => [route.name, route]));
    expect(byName.get('limited')?.rateLimited).toEqual({ limited: 5, shadow: 0 });
    expect(byName.get('shadowed')?.rateLimited).toEqual({ limited: 0, shadow: 4 });
    expect(byName.get('free')?.rateLimited).toEqual({ limited: 0, shadow: 0 });

    const html = await (await request(sidecar.admin('/'))).body.text();
    expect(html).toContain('rate-limited</th>');
    expect(html).toContain('<td class="n">5</td></tr>');
    expect(html).toContain('<td class="n">0 <span class="muted">(+4 shadow)</span></td></tr>');
  });
});
