/**
 * The hand-built access line must be the JSON pino would have written, for
 * any client-supplied path, host or request id; and the batch that writes
 * the lines must keep every write within its byte bound, in order.
 */
import { describe, expect, it } from 'vitest';
import { accessLine, hundredthsJson, traceIdOf, type AccessRecord } from '../src/observe/access-line.ts';
import { LineBatch } from '../src/observe/line-batch.ts';

function record(overrides: Partial<AccessRecord> = {}): AccessRecord {
  return {
    reqId: 'req-1',
    listener: 'ingress',
    route: 'app',
    method: 'GET',
    host: 'example.test',
    path: '/',
    status: 200,
    durationMs: 1.25,
    endedAt: Date.UTC(2026, 10, 22, 6, 30, 0, 123),
    bytesIn: 0,
    bytesOut: 5,
    upstream: 'app',
    endpoint: '127.0.0.1:3000',
    attempts: 1,
    error: undefined,
    retryStop: undefined,
    aborted: false,
    clientAddress: undefined,
    clientPort: 0,
    userAgent: undefined,
    protocol: '1.1',
    traceparent: undefined,
    upstreamHeaderMs: -1,
    ...overrides,
  };
}

describe('accessLine', () => {
  it('writes each line\'s own values when the repeated runs of fields change from one line to the next', () => {
    const variants: Partial<AccessRecord>[] = [
      {},
      { path: '/b' },
      { path: '/b', method: 'POST' },
      { route: 'other', upstream: 'other', endpoint: '127.0.0.9:80' },
      { listener: 'egress', host: 'x.test', protocol: '2', clientAddress: '::1', clientPort: 1 },
      { clientAddress: '127.0.0.1', clientPort: 2 },
      {},
    ];
    for (const variant of [...variants, ...variants.reverse()]) {
      const expected = { ...record(), ...variant };
      const parsed = JSON.parse(accessLine(record(variant)));
      for (const key of ['listener', 'route', 'method', 'host', 'path', 'protocol', 'status', 'upstream', 'endpoint', 'attempts'] as const) {
        expect(parsed[key]).toBe(expected[key]);
      }
      expect(parsed.clientAddress).toBe(expected.clientAddress);
      if (expected.clientAddress !== undefined) expect(parsed.clientPort).toBe(expected.clientPort);
    }
  });

  it('writes one JSON line with pino\'s keys first and every SPEC field', () => {
    const line = accessLine(record());
    expect(line.endsWith('}\n')).toBe(true);
    expect(line.indexOf('\n')).toBe(line.length - 1);
    const parsed = JSON.parse(line);
    expect(Object.keys(parsed).slice(0, 4)).toEqual(['level', 'time', 'pid', 'log']);
    expect(parsed).toEqual({
      level: 'info',
      time: '2026-11-22T06:30:00.123Z',
      pid: process.pid,
      log: 'access',
      reqId: 'req-1',
      listener: 'ingress',
      route: 'app',
      method: 'GET',
      host: 'example.test',
      path: '/',
      protocol: '1.1',
      status: 200,
      durationMs: 1.25,
      bytesIn: 0,
      bytesOut: 5,
      upstream: 'app',
      endpoint: '127.0.0.1:3000',
      attempts: 1,
    });
  });

  it('adds the client, user agent, trace id and upstream head time when known', () => {
    const parsed = JSON.parse(
      accessLine(record({ clientAddress: '::1', clientPort: 4321, userAgent: 'curl/8', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', upstreamHeaderMs: 0.5 })),
    );
    expect(parsed).toMatchObject({ clientAddress: '::1', clientPort: 4321, userAgent: 'curl/8', traceId: '4bf92f3577b34da6a3ce929d0e0e4736', upstreamHeaderMs: 0.5 });
  });

  it('takes the trace id only from a valid traceparent', () => {
    expect(traceIdOf('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(traceIdOf('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future')).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    for (const bad of [undefined, '', 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x', '00-"},{"x":1-00f067aa0ba902b7-01-aaaaaaaaaaaaaaa']) {
      expect(traceIdOf(bad)).toBeUndefined();
    }
  });

  it('takes the trace id of a traceparent the sidecar made without checking it, and checks a client\'s', () => {
    const made = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    expect(JSON.parse(accessLine(record({ traceparent: made, traceparentCreated: true }))).traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(JSON.parse(accessLine(record({ traceparent: made }))).traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(JSON.parse(accessLine(record({ traceparent: 'not-a-traceparent' }))).traceId).toBeUndefined();
    expect(JSON.parse(accessLine(record({ traceparent: undefined, traceparentCreated: true }))).traceId).toBeUndefined();
  });

  it('writes a 5xx at warn and the sidecar\'s own failure (internal_error) at error', () => {
    expect(JSON.parse(accessLine(record({ status: 404, error: 'no_route' }))).level).toBe('info');
    expect(JSON.parse(accessLine(record({ status: 503 }))).level).toBe('warn');
    expect(JSON.parse(accessLine(record({ status: 502, error: 'upstream_connect_failed' }))).level).toBe('warn');
    expect(JSON.parse(accessLine(record({ status: 500, error: 'internal_error' }))).level).toBe('error');
  });

  it('adds error, retryStop and aborted only when set', () => {
    const parsed = JSON.parse(accessLine(record({ status: 504, error: 'upstream_timeout', retryStop: 'deadline', aborted: true })));
    expect(parsed).toMatchObject({ error: 'upstream_timeout', retryStop: 'deadline', aborted: true });
  });

  it('escapes whatever a client puts in the path, host and request id', () => {
    const hostile = {
      path: '/a"b\\c\u0000d\u001fe\n{"injected":true}é😀',
      host: 'h"\\\r\n',
      reqId: 'id"},{"level":"fatal',
      userAgent: 'ua"},{"level":"fatal\u0000',
    };
    const line = accessLine(record(hostile));
    expect(line.indexOf('\n')).toBe(line.length - 1);
    const parsed = JSON.parse(line);
    expect(parsed.path).toBe(hostile.path);
    expect(parsed.host).toBe(hostile.host);
    expect(parsed.reqId).toBe(hostile.reqId);
    expect(parsed.userAgent).toBe(hostile.userAgent);
    expect(parsed.level).toBe('info');
    expect(parsed.injected).toBeUndefined();
  });

  it('gives each line its own fields when consecutive lines differ, and back again', () => {
    const variants = [
      record(),
      record({ route: 'other', path: '/x', host: 'b.test', method: 'POST', upstream: 'u2', endpoint: '127.0.0.1:1', listener: 'egress' }),
      record(),
      record({ path: '/"quoted"' }),
      record({ path: '' }),
    ];
    for (const variant of variants) {
      const parsed = JSON.parse(accessLine(variant));
      for (const key of ['listener', 'route', 'method', 'host', 'path', 'upstream', 'endpoint'] as const) expect(parsed[key]).toBe(variant[key]);
    }
  });

  it('writes durationMs as JSON writes the number rounded to hundredths', () => {
    const samples = [0, 0.004, 0.005, 0.01, 0.07, 0.1, 0.5, 1, 1.25, 1.5, 2, 9.99, 9.995, 10.05, 12.3, 99.999, 100, 1234.56, 30_000.01, 3_600_000];
    for (let i = 0; i < 2000; i++) samples.push(Math.random() * 10 ** (i % 7));
    for (const ms of samples) {
      const rounded = Math.round(ms * 100) / 100;
      expect(hundredthsJson(rounded)).toBe(JSON.stringify(rounded));
      expect(hundredthsJson(ms)).toBe(JSON.stringify(rounded));
    }
  });

  it('gives each line its own time, also within one millisecond and across them', () => {
    const t = Date.UTC(2026, 0, 1, 0, 0, 0, 999);
    const times = [t, t, t + 1, t].map((endedAt) => JSON.parse(accessLine(record({ endedAt }))).time);
    expect(times).toEqual(['2026-01-01T00:00:00.999Z', '2026-01-01T00:00:00.999Z', '2026-01-01T00:00:01.000Z', '2026-01-01T00:00:00.999Z']);
  });
});

describe('LineBatch', () => {
  const format = (n: number): string => `${'x'.repeat(n)}\n`;

  it('writes once per maxRecords, in order, each write within maxBytes', () => {
    const writes: string[] = [];
    const batch = new LineBatch<number>({ write: (chunk) => writes.push(chunk) }, format, { maxBytes: 100, maxRecords: 8, flushMs: 60_000 });
    const sizes = [10, 20, 30, 40, 5, 60, 70, 9];
    for (const size of sizes.slice(0, 7)) batch.push(size);
    expect(writes).toEqual([]);
    batch.push(sizes[7]);
    expect(writes.length).toBeGreaterThan(1);
    for (const chunk of writes) expect(Buffer.byteLength(chunk)).toBeLessThanOrEqual(100);
    expect(writes.join('')).toBe(sizes.map(format).join(''));
  });

  it('writes a line longer than maxBytes alone, and measures bytes, not characters', () => {
    const writes: string[] = [];
    const batch = new LineBatch<string>({ write: (chunk) => writes.push(chunk) }, (s) => `${s}\n`, { maxBytes: 16, maxRecords: 100, flushMs: 60_000 });
    batch.push('short');
    batch.push('a line far longer than sixteen bytes');
    batch.push('éééééé'); // 12 bytes + newline, 7 characters
    batch.push('ab');
    batch.flush();
    expect(writes).toEqual(['short\n', 'a line far longer than sixteen bytes\n', 'éééééé\nab\n']);
    for (const chunk of writes.filter((c) => c.length < 20)) expect(Buffer.byteLength(chunk)).toBeLessThanOrEqual(16);
  });

  it('writes a light traffic\'s lines within flushMs', async () => {
    const writes: string[] = [];
    const batch = new LineBatch<number>({ write: (chunk) => writes.push(chunk) }, format, { maxBytes: 4096, maxRecords: 16, flushMs: 20 });
    batch.push(3);
    for (let i = 0; i < 50 && writes.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(writes).toEqual(['xxx\n']);
  });
});
