/**
 * pretty.ts turns log lines into text for a terminal: whatever a client sent
 * (path, host, request id, any logged value) must reach it escaped, never as
 * a control character a terminal would obey (C0, DEL and the C1 range, which
 * JSON.stringify leaves alone).
 */
import { describe, expect, it } from 'vitest';
import type { AccessRecord } from '../src/observe/access-line.ts';
import { prettyAccessLine, prettyLine } from '../src/observe/pretty.ts';

const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

function record(overrides: Partial<AccessRecord> = {}): AccessRecord {
  return {
    reqId: 'r1', listener: 'egress', route: 'pass', method: 'GET', host: 'h.test', path: '/', status: 200, durationMs: 3.25,
    endedAt: Date.UTC(2026, 0, 1, 12, 0, 1, 123), bytesIn: 0, bytesOut: 5, upstream: 'h.test:80', endpoint: '10.0.0.1:80', attempts: 1,
    error: undefined, retryStop: undefined, aborted: false, clientAddress: '127.0.0.1', clientPort: 5000, userAgent: undefined,
    protocol: '1.1', traceparent: undefined, upstreamHeaderMs: -1, ...overrides,
  };
}

describe('pretty output', () => {
  it('an access line is one line ending in a newline', () => {
    const line = prettyAccessLine(record(), false);
    expect(line).toMatch(/^\d\d:\d\d:01\.123 egress GET h\.test\/ -> 200 3\.25ms h\.test:80 \(10\.0\.0\.1:80\) reqId=r1\n$/);
  });

  it('escapes control characters in what the client sent', () => {
    const hostile = record({ host: 'h\u009b31m', path: '/a\u001b[2Jb\u007f', reqId: 'id\u0085x' });
    const line = prettyAccessLine(hostile, false);
    expect(line.indexOf('\n')).toBe(line.length - 1);
    expect(CONTROL.test(line)).toBe(false);
    expect(line).toContain('\\u009b');
    expect(line).toContain('\\u001b');
  });

  it('a CONNECT line shows its bytes; a request rejected unread shows its client', () => {
    expect(prettyAccessLine(record({ method: 'CONNECT', path: '', bytesIn: 10, bytesOut: 20 }), false)).toContain(' in=10B out=20B ');
    expect(prettyAccessLine(record({ method: '', host: '', path: '', status: 431, error: 'headers_too_large', upstream: '', endpoint: '', route: '' }), false)).toMatch(
      / egress - - -> 431 3\.25ms error=headers_too_large client=127\.0\.0\.1:5000 reqId=r1\n$/,
    );
  });

  it('another line: time LEVEL message key=value, an error\'s stack below, controls escaped', () => {
    const json = JSON.stringify({
      level: 'error', time: '2026-01-01T12:00:01.123Z', pid: 1, msg: 'failed \u001b[31m',
      listener: 'ingress', count: 2, err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at f (x.ts:1:1)' },
    });
    const out = prettyLine(json, false);
    const [first, ...rest] = out.trimEnd().split('\n');
    expect(first).toMatch(/^\d\d:\d\d:01\.123 ERROR failed \\u001b\[31m listener=ingress count=2 err=\{"type":"Error","message":"boom"\}$/);
    expect(rest).toEqual(['    Error: boom', '        at f (x.ts:1:1)']);
    expect(CONTROL.test(out)).toBe(false);
  });

  it('passes a line that is not JSON on, escaped', () => {
    expect(prettyLine('plain \u001b text', false)).toBe('plain \\u001b text\n');
  });
});
