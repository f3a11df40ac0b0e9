/**
 * `tracing.upstreamSpans: true`: every upstream try is a CLIENT span, child
 * of the request's SERVER span, so a retry shows as a second try; each try
 * sends its own span id upstream. Without it, the upstream sees the SERVER
 * span's id (tracing-spans.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { startOtlpReceiver, type OtlpReceiver } from './helpers/otlp-receiver.ts';

describe('tracing: a CLIENT span per upstream try', () => {
  let flaky: TestServer;
  let receiver: OtlpReceiver;
  let sidecar: RunningSidecar;
  const seen: string[] = [];

  beforeAll(async () => {
    let calls = 0;
    // 503 to the first try of every request, 200 to the second.
    flaky = await startHttpServer((req, res) => {
      seen.push(String(req.headers.traceparent));
      req.resume();
      res.writeHead(calls++ % 2 === 0 ? 503 : 200, { 'content-type': 'text/plain' });
      res.end('done');
    });
    receiver = await startOtlpReceiver();
    sidecar = await startSidecar(`${TEST_BASE}
tracing: { endpoint: "${receiver.url}", upstreamSpans: true, flushInterval: 20ms }
upstreams:
  flaky: { endpoints: [${flaky.url}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: api, match: { path: / }, upstream: flaky, retry: { attempts: 2, on: [503], backoff: { base: 1ms, max: 1ms } } }
`);
  });
  afterAll(async () => {
    await sidecar?.close();
    await receiver?.close();
    await flaky?.close();
  });

  it('shows the retry as two tries under the SERVER span, each try\'s span id sent upstream', async () => {
    const trace = '5'.repeat(32);
    const response = await request(sidecar.url('/items?x=1'), { headers: { traceparent: `00-${trace}-${'6'.repeat(16)}-01` } });
    await response.body.dump();
    expect(response.statusCode).toBe(200);
    const spans = await receiver.waitForSpans(3, 5_000);
    const server = spans.find((span) => span.kind === 2)!;
    const tries = spans.filter((span) => span.kind === 3).sort((a, b) => (BigInt(a.startTimeUnixNano) < BigInt(b.startTimeUnixNano) ? -1 : 1));
    expect(server).toMatchObject({ name: 'GET api', traceId: trace, parentSpanId: '6'.repeat(16), status: { code: 0 } });
    expect(server.attributes).toMatchObject({ 'http.response.status_code': 200, 'http.request.resend_count': 1 });
    expect(tries).toHaveLength(2);
    for (const span of tries) expect(span).toMatchObject({ traceId: trace, parentSpanId: server.spanId, name: 'GET flaky' });
    expect(tries[0]).toMatchObject({ status: { code: 2, message: '503' } });
    expect(tries[0].attributes).toMatchObject({ 'http.response.status_code': 503, 'error.type': '503', 'url.full': `${flaky.url}/items`, 'server.address': '127.0.0.1', 'server.port': flaky.port });
    expect(tries[0].attributes['http.request.resend_count']).toBeUndefined();
    expect(tries[1]).toMatchObject({ status: { code: 0 } });
    expect(tries[1].attributes).toMatchObject({ 'http.response.status_code': 200, 'http.request.resend_count': 1 });
    expect(seen).toEqual(tries.map((span) => `00-${trace}-${span.spanId}-01`));
  });
});
