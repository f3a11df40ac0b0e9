/**
 * Request ids: a sane incoming x-request-id is kept, anything else gets a new
 * random (version 4) UUID. The UUIDs are made in batches (headers.ts), so the
 * checks run across several batches.
 */
import { describe, expect, it } from 'vitest';
import { newUuid, requestIdOf } from '../src/proxy/headers.ts';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('request ids', () => {
  it('are version 4 UUIDs, all different, across batches', () => {
    const ids = Array.from({ length: 1000 }, () => newUuid());
    for (const id of ids) expect(id).toMatch(UUID_V4);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('use every hex digit in every random position (no stuck nibble)', () => {
    const seen = Array.from({ length: 36 }, () => new Set<string>());
    for (let i = 0; i < 2000; i++) [...newUuid()].forEach((char, at) => seen[at].add(char));
    const counts = seen.map((chars) => chars.size);
    // Dashes at 8, 13, 18, 23; the version digit at 14; the variant digit at 19 is one of 8, 9, a, b.
    expect(counts).toEqual(counts.map((_, at) => ([8, 13, 18, 23, 14].includes(at) ? 1 : at === 19 ? 4 : 16)));
  });

  it('keep a sane incoming x-request-id and replace anything else', () => {
    expect(requestIdOf({ 'x-request-id': 'abc-123' })).toBe('abc-123');
    for (const bad of ['', 'has space', 'x'.repeat(201), 'tab\there', 'ünïcode']) expect(requestIdOf({ 'x-request-id': bad })).toMatch(UUID_V4);
    expect(requestIdOf({})).toMatch(UUID_V4);
  });
});
