/**
 * `workers: 2` with tracing: each worker exports the spans of the requests it
 * served; every request's span arrives once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshRequest } from './helpers/cluster.ts';
import { closedPort, echoServer, type TestServer } from './helpers/servers.ts';
import { spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';
import { appBehindIngress, startOtlpReceiver, type OtlpReceiver } from './helpers/otlp-receiver.ts';

describe('tracing with workers', () => {
  let echo: TestServer;
  let receiver: OtlpReceiver;
  let sidecar: SidecarProcess;
  let ingressPort: number;

  beforeAll(async () => {
    echo = await echoServer();
    receiver = await startOtlpReceiver();
    ingressPort = await closedPort();
    const file = writeConfig(`
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: false }
workers: 2
tracing: { endpoint: "${receiver.url}", flushInterval: 50ms }
${appBehindIngress(echo.url).replace('127.0.0.1:0', `127.0.0.1:${ingressPort}`)}`);
    sidecar = await spawnSidecar(['--config', file]);
  });
  afterAll(async () => {
    await sidecar?.stop();
    await receiver?.close();
    await echo?.close();
  });

  it('sends one span per request, from the worker that served it', async () => {
    for (let i = 0; i < 12; i++) expect((await freshRequest(ingressPort, `/w/${i}`)).status).toBe(200);
    const spans = await receiver.waitForSpans(12, 10_000);
    expect(spans.map((span) => span.attributes['url.path']).sort()).toEqual(Array.from({ length: 12 }, (_, i) => `/w/${i}`).sort());
    expect(new Set(spans.map((span) => span.spanId)).size).toBe(12);
    for (const span of spans) expect(span.resource['process.pid']).not.toBe(sidecar.child.pid); // a worker, not the primary
  });
});
