/**
 * Tracing on: a request through ingress and one through egress each produce
 * a SERVER span, received by a real OTLP/HTTP receiver on loopback: named
 * `{METHOD} {route}`, with the HTTP semantic-convention attributes, the
 * incoming traceparent's trace and parent, and the status (ERROR for a 5xx,
 * with the sidecar's error code as error.type). Upstream, a sampled request
 * carries the sidecar's own span id in traceparent, and tracestate unchanged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { closedPort, echoServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { proxiedRequest } from './helpers/egress.ts';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './helpers/otlp-receiver.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

describe('tracing: SERVER spans of ingress and egress', () => {
  let echo: TestServer;
  let receiver: OtlpReceiver;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    echo = await echoServer();
    receiver = await startOtlpReceiver();
    const dead = await closedPort();
    sidecar = await startSidecar(`${TEST_BASE}
tracing: { endpoint: "${receiver.url}", serviceName: checkout-sidecar, sampleRatio: 1, flushInterval: 50ms }
upstreams:
  app: { endpoints: [${echo.url}] }
  dead: { endpoints: [http://127.0.0.1:${dead}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: broken, match: { path: /broken }, upstream: dead }
    - { name: app, match: { path: / }, upstream: app }
egress:
  listen: 127.0.0.1:0
  routes:
    - { name: echo-out, match: { host: 127.0.0.1, ports: [${echo.port}] } }
`);
  });
  afterAll(async () => {
    await sidecar?.close();
    await receiver?.close();
    await echo?.close();
  });

  const spanOf = async (traceId: string): Promise<ReceivedSpan> => {
    const until = Date.now() + 5_000;
    for (let round = 0; round < 500 && Date.now() < until; round++) {
      const span = receiver.spans.find((each) => each.traceId === traceId);
      if (span) return span;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`no span of trace ${traceId} arrived; got ${JSON.stringify(receiver.spans.map((span) => span.name))}`);
  };

  it('ingress: a span parented on the incoming traceparent; upstream gets our span id and the tracestate unchanged', async () => {
    const response = await request(sidecar.url('/orders/42?secret=1'), {
      headers: { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'vendor=abc,other=x', 'user-agent': 'trace-test/1', 'x-request-id': 'trace-ingress-1' },
    });
    const echoed = (await response.body.json()) as { headers: Record<string, string> };
    expect(response.statusCode).toBe(200);
    const span = await spanOf(TRACE);
    expect(span).toMatchObject({ traceId: TRACE, parentSpanId: PARENT, name: 'GET app', kind: 2, status: { code: 0 } });
    expect(span.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(span.spanId).not.toBe(PARENT);
    expect(echoed.headers.traceparent).toBe(`00-${TRACE}-${span.spanId}-01`);
    expect(echoed.headers.tracestate).toBe('vendor=abc,other=x');
    expect(span.attributes).toMatchObject({
      'http.request.method': 'GET',
      'http.response.status_code': 200,
      'url.path': '/orders/42',
      'url.scheme': 'http',
      'server.address': '127.0.0.1',
      'client.address': '127.0.0.1',
      'network.protocol.version': '1.1',
      'user_agent.original': 'trace-test/1',
      'sidecar.listener': 'ingress',
      'sidecar.route': 'app',
      'sidecar.upstream': 'app',
      'sidecar.request_id': 'trace-ingress-1',
    });
    expect(span.attributes['error.type']).toBeUndefined();
    expect(span.resource).toMatchObject({ 'service.name': 'checkout-sidecar' });
    expect(BigInt(span.endTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(span.startTimeUnixNano));
    // Within a minute of now: the nanoseconds are Unix time.
    expect(Math.abs(Number(BigInt(span.startTimeUnixNano) / 1_000_000n) - Date.now())).toBeLessThan(60_000);
  });

  it('ingress: the sidecar\'s own 502 is an ERROR span with its code as error.type', async () => {
    const trace = 'a'.repeat(31) + 'b';
    const response = await request(sidecar.url('/broken'), { headers: { traceparent: `00-${trace}-${PARENT}-01` } });
    await response.body.dump();
    expect(response.statusCode).toBe(502);
    const span = await spanOf(trace);
    expect(span).toMatchObject({ name: 'GET broken', status: { code: 2, message: 'upstream_connect_failed' } });
    expect(span.attributes).toMatchObject({ 'http.response.status_code': 502, 'error.type': 'upstream_connect_failed' });
  });

  it('egress: a request no route allows is named by its method alone, never by its path; a 4xx is no ERROR', async () => {
    const trace = 'c'.repeat(32);
    const answer = await proxiedRequest(sidecar.egressPort!, 'http://denied.example:81/some/path', { headers: { traceparent: `00-${trace}-${PARENT}-01` } });
    expect(answer.status).toBe(403);
    const span = await spanOf(trace);
    expect(span).toMatchObject({ name: 'GET', status: { code: 0 } });
    expect(span.attributes).toMatchObject({ 'http.response.status_code': 403, 'error.type': 'destination_denied', 'url.path': '/some/path', 'sidecar.route': '' });
  });

  it('egress: an absolute-form request makes a span named by its egress route', async () => {
    const trace = 'd'.repeat(32);
    const answer = await proxiedRequest(sidecar.egressPort!, `http://127.0.0.1:${echo.port}/pay?card=1`, {
      method: 'POST',
      headers: { traceparent: `00-${trace}-${PARENT}-01`, 'content-type': 'text/plain' },
      body: 'hello',
    });
    expect(answer.status).toBe(200);
    const span = await spanOf(trace);
    expect(span).toMatchObject({ traceId: trace, parentSpanId: PARENT, name: 'POST echo-out', kind: 2, status: { code: 0 } });
    expect(span.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.response.status_code': 200,
      'url.path': '/pay',
      'server.address': '127.0.0.1',
      'sidecar.listener': 'egress',
      'sidecar.route': 'echo-out',
    });
    expect((JSON.parse(answer.body) as { headers: Record<string, string> }).headers.traceparent).toBe(`00-${trace}-${span.spanId}-01`);
  });

  it('a request without traceparent starts a sampled trace of its own (sampleRatio 1)', async () => {
    const response = await request(sidecar.url('/new'));
    const echoed = (await response.body.json()) as { headers: Record<string, string> };
    const [, trace, spanId, flags] = echoed.headers.traceparent.split('-');
    expect(flags).toBe('01');
    const span = await spanOf(trace);
    expect(span.spanId).toBe(spanId);
    expect(span.parentSpanId).toBeUndefined();
  });
});
