import { describe, expect, it } from 'vitest';
import { DEFAULT_PATH_OPTIONS, normalizeTarget, type PathOptions } from '../src/net/normalize-path.ts';

const reasonOf = (result: ReturnType<typeof normalizeTarget>) => (typeof result === 'string' ? result : `refused: ${result.reason}`);
const norm = (target: string, options: Partial<PathOptions> = {}) => reasonOf(normalizeTarget(target, { ...DEFAULT_PATH_OPTIONS, ...options }));

describe('normalizeTarget', () => {
  it('leaves a clean path, and any query, alone', () => {
    for (const target of ['/', '/a/b.c/d-e_f~', '/a/b?x=/../y//z&p=%2e', '/a.b/c.']) expect(norm(target), target).toBe(target);
  });

  it('removes dot segments (RFC 3986 5.2.4), encoded ones too', () => {
    expect(norm('/a/./b/../c')).toBe('/a/c');
    expect(norm('/a/b/..')).toBe('/a/');
    expect(norm('/a/b/.')).toBe('/a/b/');
    expect(norm('/a/%2e%2E/b')).toBe('/b');
    expect(norm('/a/.%2e/b')).toBe('/b');
    expect(norm('/a/%2e/b')).toBe('/a/b');
    expect(norm('/a/...')).toBe('/a/...');
    expect(norm('/a/.hidden/..x')).toBe('/a/.hidden/..x');
  });

  it('refuses a path above the root', () => {
    for (const target of ['/..', '/../a', '/a/../../b', '/%2e%2e/a', '/a/%2E%2E/%2e%2e/b']) expect(norm(target), target).toMatch(/^refused: .*above the root/);
  });

  it('decodes unreserved characters and upper-cases the other escapes', () => {
    expect(norm('/%41%7a%30%2d%2E%5f%7E')).toBe('/Az0-._~');
    expect(norm('/a%20b%3a%c3%a9')).toBe('/a%20b%3A%C3%A9');
    // Decoded once: %25 stays, so %252e is the text "%2e", never a dot.
    expect(norm('/a/%252e%252e/b')).toBe('/a/%252e%252e/b');
  });

  it('refuses broken escapes', () => {
    for (const target of ['/%', '/a%2', '/%zz', '/%g0/a']) expect(norm(target), target).toMatch(/^refused: malformed/);
  });

  it('merges slashes first, so //.. climbs one level as in NGINX (unless mergeSlashes is off)', () => {
    expect(norm('//a///b//')).toBe('/a/b/');
    expect(norm('/a//../b')).toBe('/b');
    expect(norm('/a//b', { mergeSlashes: false })).toBe('/a//b');
    expect(norm('/a//../b', { mergeSlashes: false })).toBe('/a/b');
  });

  it('keeps %2F and %5C encoded, encodes a raw backslash, or refuses all three', () => {
    expect(norm('/a%2fb%5cc')).toBe('/a%2Fb%5Cc');
    expect(norm('/a\\..\\b')).toBe('/a%5C..%5Cb');
    for (const target of ['/a%2fb', '/a%2Fb', '/a%5cb', '/a\\b']) {
      expect(norm(target, { rejectEncodedSlashes: true }), target).toMatch(/^refused: encoded slash/);
      expect(norm(target, { rejectEncodedSlashes: true, normalize: false }), target).toMatch(/^refused: encoded slash/);
    }
  });

  it('with normalize off, routes the raw path', () => {
    expect(norm('/a/../b//%41', { normalize: false })).toBe('/a/../b//%41');
  });
});
