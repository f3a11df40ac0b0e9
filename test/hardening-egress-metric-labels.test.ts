/**
 * Issue 20 "Gaps": pass-through destinations are labelled in the metrics by
 * the route they went through, never by `host:port` (a `*` route would make
 * one series per destination an app ever called, kept forever) and not by an
 * empty label either (which hides which route the traffic took).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoServer, startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { proxiedRequest } from './helpers/egress.ts';

/** The label values of `label` in the series of `metric` whose labels include `having`. */
function labelValues(metrics: string, metric: string, having: string, label: string): Set<string> {
  const values = new Set<string>();
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${metric}{`) || !line.includes(having)) continue;
    const value = new RegExp(`[{,]${label}="([^"]*)"`).exec(line)?.[1];
    if (value !== undefined) values.add(value);
  }
  return values;
}

describe('egress metric labels of pass-through destinations', () => {
  let servers: TestServer[];
  let flaky: TestServer;
  let flakyCalls = 0;
  let sidecar: RunningSidecar;
  let proxy: number;

  beforeAll(async () => {
    servers = await Promise.all([echoServer(), echoServer(), echoServer(), echoServer()]);
    flaky = await startHttpServer((req, res) => {
      req.resume();
      flakyCalls++;
      res.writeHead(flakyCalls % 2 === 1 ? 503 : 200).end();
    });
    sidecar = await startSidecar(`${TEST_BASE}
egress:
  listen: 127.0.0.1:0
  routes:
    - { name: flaky, match: { host: 127.0.0.1, ports: [${flaky.port}] }, retry: { attempts: 2, on: [503] } }
    - { name: anywhere, match: { host: "*" }, allowLoopback: true }
`);
    proxy = sidecar.egressPort!;
  });
  afterAll(async () => {
    await sidecar.close();
    for (const server of [...servers, flaky]) await server.close();
  });

  it('labels eight distinct destinations of one * route with the route name only', async () => {
    for (const server of servers) {
      for (const host of ['127.0.0.1', 'localhost']) {
        expect((await proxiedRequest(proxy, `http://${host}:${server.port}/x`)).status).toBe(200);
      }
    }
    const metrics = await (await fetch(sidecar.admin('/metrics'))).text();
    const having = 'listener="egress",route="anywhere"';
    expect(labelValues(metrics, 'sidecar_requests_total', having, 'upstream')).toEqual(new Set(['anywhere']));
    expect(labelValues(metrics, 'sidecar_request_duration_seconds_count', having, 'upstream')).toEqual(new Set(['anywhere']));
    for (const server of servers) expect(metrics).not.toContain(`:${server.port}"`);
  });

  it('labels the retries of a pass-through route with the route name', async () => {
    expect((await proxiedRequest(proxy, `http://127.0.0.1:${flaky.port}/charge`)).status).toBe(200);
    const metrics = await (await fetch(sidecar.admin('/metrics'))).text();
    expect(labelValues(metrics, 'sidecar_upstream_retries_total', 'reason="503"', 'upstream')).toEqual(new Set(['flaky']));
  });
});
