/**
 * Where tracing's settings come from: off by default; the `tracing:` block;
 * the standard OTEL_* variables when the block leaves a key out (or is
 * absent); `enabled: false` and OTEL_SDK_DISABLED turn it off. A sidecar with
 * no tracing block but OTEL_EXPORTER_OTLP_ENDPOINT set sends spans named with
 * OTEL_SERVICE_NAME, and its access lines carry traceId and spanId. Header
 * values for the collector are secrets in /config.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { tracingSettings } from '../src/tracing/settings.ts';
import { accessLine } from '../src/observe/access-line.ts';
import { echoServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE } from './helpers/sidecar.ts';
import { appBehindIngress, startOtlpReceiver } from './helpers/otlp-receiver.ts';

const block = (keys: Record<string, unknown> = {}) => ({ enabled: true, upstreamSpans: false, maxQueue: 2048, maxBatch: 512, flushInterval: 1_000, exportTimeout: 10_000, ...keys });

describe('tracing settings', () => {
  it('is off without a block and without an endpoint variable', () => {
    expect(tracingSettings(undefined, {})).toBeUndefined();
    expect(tracingSettings(undefined, { OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER_ARG: '0.5' })).toBeUndefined();
  });

  it('takes the OTEL_* variables when there is no block', () => {
    const settings = tracingSettings(undefined, {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
      OTEL_SERVICE_NAME: 'checkout',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20abc, x-tenant = t1',
    });
    expect(settings).toMatchObject({ endpoint: 'http://collector:4318/v1/traces', serviceName: 'checkout', sampleRatio: 0.25, headers: { authorization: 'Bearer abc', 'x-tenant': 't1' } });
    expect(tracingSettings(undefined, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/custom', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://other' })?.endpoint).toBe('http://c:4318/custom');
    expect(tracingSettings(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER_ARG: 'lots' })?.sampleRatio).toBe(1);
  });

  it('lets the block win over the variables, and defaults what neither says', () => {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4318', OTEL_SERVICE_NAME: 'from-env', OTEL_TRACES_SAMPLER_ARG: '0.5' };
    expect(tracingSettings(block({ endpoint: 'http://file:4318/v1/traces', sampleRatio: 0.01 }), env)).toMatchObject({
      endpoint: 'http://file:4318/v1/traces',
      serviceName: 'from-env',
      sampleRatio: 0.01,
    });
    expect(tracingSettings(block(), {})).toMatchObject({ endpoint: 'http://localhost:4318/v1/traces', serviceName: 'sidecar', sampleRatio: 1 });
  });

  it('is turned off by enabled: false and by OTEL_SDK_DISABLED', () => {
    expect(tracingSettings(block({ enabled: false }), { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBeUndefined();
    expect(tracingSettings(block(), { OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
    expect(tracingSettings(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' })).toBeUndefined();
  });
});

describe('the access line with tracing', () => {
  const record = {
    reqId: 'r1', listener: 'ingress', route: 'app', method: 'GET', host: 'h', path: '/', status: 200, durationMs: 1, endedAt: Date.now(),
    bytesIn: 0, bytesOut: 0, upstream: 'app', endpoint: 'e', attempts: 1, error: undefined, retryStop: undefined, aborted: false,
    clientAddress: undefined, clientPort: 0, userAgent: undefined, protocol: '1.1', upstreamHeaderMs: -1,
    traceparent: '00-11111111111111111111111111111111-2222222222222222-01',
  };

  it('has traceId and, for a sampled request, the sidecar\'s spanId', () => {
    const sampled = JSON.parse(accessLine({ ...record, trace: { traceId: '11111111111111111111111111111111', spanId: '3333333333333333', sampled: true } }));
    expect(sampled).toMatchObject({ traceId: '11111111111111111111111111111111', spanId: '3333333333333333' });
    const unsampled = JSON.parse(accessLine({ ...record, trace: { traceId: '11111111111111111111111111111111', spanId: '3333333333333333', sampled: false } }));
    expect(unsampled.traceId).toBe('11111111111111111111111111111111');
    expect(unsampled.spanId).toBeUndefined();
    expect(JSON.parse(accessLine(record)).spanId).toBeUndefined(); // tracing off: as before
  });
});

describe('tracing from OTEL_* variables alone', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const key of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_SERVICE_NAME', 'SIDECAR_TEST_OTLP_SECRET']) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
  });

  it('sends spans with OTEL_SERVICE_NAME when OTEL_EXPORTER_OTLP_ENDPOINT is set; header values are redacted in /config', async () => {
    const echo = await echoServer();
    const receiver = await startOtlpReceiver();
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url.replace(/\/v1\/traces$/, '');
    process.env.OTEL_SERVICE_NAME = 'from-the-environment';
    const sidecar = await startSidecar(`${TEST_BASE}${appBehindIngress(echo.url)}`);
    try {
      await (await request(sidecar.url('/'))).body.dump();
      const spans = await receiver.waitForSpans(1, 5_000);
      expect(spans[0]).toMatchObject({ name: 'GET app', resource: { 'service.name': 'from-the-environment' } });
    } finally {
      await sidecar.close();
      await receiver.close();
      await echo.close();
    }
  });

  it('shows tracing.headers values as [redacted] in /config', async () => {
    const sidecar = await startSidecar(`${TEST_BASE}
tracing: { enabled: false, headers: { x-api-key: plain-collector-key } }
`);
    try {
      const config = (await (await request(sidecar.admin('/config'))).body.json()) as { config: { tracing: { headers: Record<string, string> } } };
      expect(config.config.tracing.headers['x-api-key']).toBe('[redacted]');
    } finally {
      await sidecar.close();
    }
  });
});
