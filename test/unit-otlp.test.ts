/**
 * The OTLP/HTTP JSON the exporter writes by hand: valid JSON whatever a
 * client put in its path, user agent or request id, times as Unix
 * nanoseconds in text, CLIENT spans under their SERVER span.
 */
import { describe, expect, it } from 'vitest';
import { exportRequest, unixNanos, type TracedRequest } from '../src/tracing/otlp.ts';
import { traceContextOf } from '../src/tracing/context.ts';

const settings = { endpoint: '', serviceName: 's', sampleRatio: 1, upstreamSpans: true, headers: {}, maxQueue: 10, maxBatch: 10, flushInterval: 10, exportTimeout: 10 };

function traced(overrides: Partial<TracedRequest> = {}): TracedRequest {
  return {
    trace: traceContextOf('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', settings),
    listener: 'ingress', route: 'app', method: 'GET', host: 'example.test', path: '/', status: 200, error: undefined, aborted: false,
    start: performance.now(), durationMs: 1.5, clientAddress: '127.0.0.1', clientPort: 5000, protocol: '1.1', userAgent: 'ua',
    upstream: 'app', endpoint: '127.0.0.1:3000', attempts: 1, reqId: 'r', ...overrides,
  };
}

describe('OTLP/HTTP JSON', () => {
  it('stays valid JSON with quotes, backslashes and control characters in client-supplied strings', () => {
    const nasty = 'a"b\\c\u0000d\u001fe\n\u2028</script>';
    const body = JSON.parse(exportRequest([traced({ path: `/${nasty}`, userAgent: nasty, reqId: nasty, host: nasty })], { serviceName: `svc${nasty}`, serviceVersion: '1.0.0' }));
    const span = body.resourceSpans[0].scopeSpans[0].spans[0];
    const attributes = Object.fromEntries(span.attributes.map((a: { key: string; value: { stringValue?: string } }) => [a.key, a.value.stringValue]));
    expect(attributes['url.path']).toBe(`/${nasty}`);
    expect(attributes['user_agent.original']).toBe(nasty);
    expect(attributes['sidecar.request_id']).toBe(nasty);
    expect(body.resourceSpans[0].resource.attributes[0]).toEqual({ key: 'service.name', value: { stringValue: `svc${nasty}` } });
  });

  it('writes times as Unix nanoseconds, in text, without losing the digits below a millisecond', () => {
    const nanos = unixNanos(0.000_123);
    expect(nanos).toMatch(/^\d{19}$/);
    expect(BigInt(nanos) - BigInt(Math.floor(performance.timeOrigin)) * 1_000_000n).toBeLessThan(1_000_000n);
    expect(BigInt(unixNanos(1)) - BigInt(unixNanos(0))).toBeGreaterThanOrEqual(999_999n);
    expect(BigInt(unixNanos(1)) - BigInt(unixNanos(0))).toBeLessThanOrEqual(1_000_001n);
  });

  it('puts each try\'s CLIENT span under the SERVER span', () => {
    const request = traced({ attempts: 2 });
    request.trace!.upstreamTraceparent({ shown: 'http://127.0.0.1:3000', shownAuthority: '127.0.0.1:3000' }, '/a?secret=1');
    request.trace!.endTry(503, undefined);
    request.trace!.upstreamTraceparent({ shown: 'http://127.0.0.1:3001', shownAuthority: '127.0.0.1:3001' }, '/a?secret=1');
    request.trace!.endTry(200, undefined);
    const spans = JSON.parse(exportRequest([request], { serviceName: 's', serviceVersion: '1' })).resourceSpans[0].scopeSpans[0].spans;
    expect(spans.map((span: { kind: number }) => span.kind)).toEqual([2, 3, 3]);
    expect(spans[1].parentSpanId).toBe(spans[0].spanId);
    const url = spans[1].attributes.find((a: { key: string }) => a.key === 'url.full').value.stringValue;
    expect(url).toBe('http://127.0.0.1:3000/a'); // never the query
  });
});
