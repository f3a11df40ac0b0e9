/**
 * splitHost turns a Host header into host and port (or rejects it), and keeps
 * the last answer for a repeated value: a different value, or the same value
 * with another default port, must never get the kept answer.
 */
import { describe, expect, it } from 'vitest';
import { splitHost } from '../src/proxy/route.ts';

describe('splitHost', () => {
  it('splits, lower-cases, unwraps IPv6 and applies the default port', () => {
    expect(splitHost('Example.TEST:8080', 80)).toEqual({ host: 'example.test', port: 8080 });
    expect(splitHost('example.test', 80)).toEqual({ host: 'example.test', port: 80 });
    expect(splitHost('[::1]:9000', 80)).toEqual({ host: '::1', port: 9000 });
    expect(splitHost('[::1]', 443)).toEqual({ host: '::1', port: 443 });
  });

  it('rejects what is not a host', () => {
    for (const bad of ['', 'a:b', 'a:99999', 'user@host', 'a/b', 'a b', '[::1', 'host:']) expect(splitHost(bad, 80)).toBeUndefined();
    expect(splitHost(undefined, 80)).toBeUndefined();
  });

  it('answers each value on its own when values alternate or repeat', () => {
    const sequence: Array<[string, number, { host: string; port: number } | undefined]> = [
      ['a.test', 80, { host: 'a.test', port: 80 }],
      ['a.test', 80, { host: 'a.test', port: 80 }],
      ['a.test', 8080, { host: 'a.test', port: 8080 }],
      ['b.test:81', 80, { host: 'b.test', port: 81 }],
      ['bad host', 80, undefined],
      ['bad host', 80, undefined],
      ['a.test', 80, { host: 'a.test', port: 80 }],
    ];
    for (const [value, defaultPort, expected] of sequence) expect(splitHost(value, defaultPort)).toEqual(expected);
  });
});
