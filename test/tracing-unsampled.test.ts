/**
 * `sampleRatio: 0`: nothing reaches the collector, and an incoming
 * traceparent goes upstream untouched; a request without one gets a new,
 * unsampled traceparent (flags 00). Sampling is parent-based: a client that
 * sampled its trace is still followed, and that span is sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { echoServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { appBehindIngress, startOtlpReceiver, type OtlpReceiver } from './helpers/otlp-receiver.ts';

describe('tracing: sampleRatio 0', () => {
  let echo: TestServer;
  let receiver: OtlpReceiver;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    echo = await echoServer();
    receiver = await startOtlpReceiver();
    sidecar = await startSidecar(`${TEST_BASE}
tracing: { endpoint: "${receiver.url}", sampleRatio: 0, flushInterval: 20ms }${appBehindIngress(echo.url)}`);
  });
  afterAll(async () => {
    await sidecar?.close();
    await receiver?.close();
    await echo?.close();
  });

  const upstreamHeaders = async (headers: Record<string, string>) => {
    const response = await request(sidecar.url('/'), { headers });
    return ((await response.body.json()) as { headers: Record<string, string> }).headers;
  };

  it('sends nothing and forwards an incoming traceparent (and tracestate) unchanged', async () => {
    const incoming = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00';
    for (let i = 0; i < 20; i++) {
      const seen = await upstreamHeaders({ traceparent: incoming, tracestate: 'congo=t61rcWkgMzE' });
      expect(seen.traceparent).toBe(incoming);
      expect(seen.tracestate).toBe('congo=t61rcWkgMzE');
    }
    const created = (await upstreamHeaders({})).traceparent;
    expect(created).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    // A later sampled request's span arrives; had any of the above been sampled, its span would have come first.
    const sampled = '00-11111111111111111111111111111111-2222222222222222-01';
    const followed = (await upstreamHeaders({ traceparent: sampled })).traceparent;
    const spans = await receiver.waitForSpans(1, 5_000);
    expect(spans.map((span) => span.traceId)).toEqual(['11111111111111111111111111111111']);
    expect(followed).toBe(`00-11111111111111111111111111111111-${spans[0].spanId}-01`);
    expect(spans[0].parentSpanId).toBe('2222222222222222');
  });

  it('treats an invalid traceparent as none: a new unsampled trace', async () => {
    for (const bad of ['00-00000000000000000000000000000000-b7ad6b7169203331-01', 'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'garbage']) {
      const seen = await upstreamHeaders({ traceparent: bad });
      expect(seen.traceparent, bad).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    }
    expect(receiver.spans).toHaveLength(1); // only the one of the test above
  });
});
