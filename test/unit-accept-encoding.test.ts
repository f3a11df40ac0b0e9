/**
 * Accept-Encoding negotiation (policy/accept-encoding.ts): q-values decide,
 * the server's order breaks ties, `*` stands for the codings not named, and a
 * coding refused with q=0 is never chosen.
 */
import { describe, expect, it } from 'vitest';
import { CodingChooser, acceptedCodings } from '../src/policy/accept-encoding.ts';

const OFFERED = ['br', 'gzip'] as const;

describe('acceptedCodings', () => {
  it('takes the client weights over the server order', () => {
    expect(acceptedCodings('gzip;q=1.0, br;q=0.5', OFFERED)).toEqual(['gzip', 'br']);
    expect(acceptedCodings('gzip;q=0.4, br;q=0.8', OFFERED)).toEqual(['br', 'gzip']);
  });

  it('breaks ties by the server order, whatever order the client wrote', () => {
    expect(acceptedCodings('gzip, deflate, br', OFFERED)).toEqual(['br', 'gzip']);
    expect(acceptedCodings('gzip, br', ['gzip', 'br'])).toEqual(['gzip', 'br']);
    expect(acceptedCodings('br;q=0.5, gzip;q=0.5', OFFERED)).toEqual(['br', 'gzip']);
  });

  it('never offers a coding refused with q=0, even through *', () => {
    expect(acceptedCodings('br;q=0, gzip', OFFERED)).toEqual(['gzip']);
    expect(acceptedCodings('*, br;q=0', OFFERED)).toEqual(['gzip']);
    expect(acceptedCodings('*;q=0', OFFERED)).toEqual([]);
    expect(acceptedCodings('gzip;q=0.000', OFFERED)).toEqual([]);
  });

  it('lets * stand for every coding not named', () => {
    expect(acceptedCodings('*', OFFERED)).toEqual(['br', 'gzip']);
    expect(acceptedCodings('gzip;q=0.2, *;q=0.5', OFFERED)).toEqual(['br', 'gzip']);
  });

  it('reads x-gzip as gzip, names in any case, blanks and several header lines', () => {
    expect(acceptedCodings('x-gzip', OFFERED)).toEqual(['gzip']);
    expect(acceptedCodings(' GZIP ; Q=0.3 ,  Br ', OFFERED)).toEqual(['br', 'gzip']);
    expect(acceptedCodings(['gzip;q=0.1', 'br'], OFFERED)).toEqual(['br', 'gzip']);
  });

  it('takes the lower weight of a coding named twice', () => {
    expect(acceptedCodings('gzip, gzip;q=0', OFFERED)).toEqual([]);
  });

  it('gives nothing for no header, identity only, unknown codings or a malformed weight', () => {
    expect(acceptedCodings(undefined, OFFERED)).toEqual([]);
    expect(acceptedCodings('', OFFERED)).toEqual([]);
    expect(acceptedCodings('identity', OFFERED)).toEqual([]);
    expect(acceptedCodings('deflate, compress', OFFERED)).toEqual([]);
    expect(acceptedCodings('gzip;q=abc', OFFERED)).toEqual([]);
    expect(acceptedCodings('gzip;q=2', OFFERED)).toEqual([]);
  });

  it('offers zstd only where the server offers it', () => {
    expect(acceptedCodings('zstd, gzip;q=0.9', OFFERED)).toEqual(['gzip']);
    expect(acceptedCodings('zstd, gzip;q=0.9', ['br', 'zstd', 'gzip'])).toEqual(['zstd', 'gzip']);
  });
});

describe('CodingChooser', () => {
  it('chooses the best coding, the same again for the same header, and changes with the header', () => {
    const chooser = new CodingChooser(OFFERED);
    expect(chooser.choose('gzip, br')).toBe('br');
    expect(chooser.choose('gzip, br')).toBe('br');
    expect(chooser.choose('gzip')).toBe('gzip');
    expect(chooser.choose('br;q=0')).toBeUndefined();
    expect(chooser.choose(undefined)).toBeUndefined();
    expect(chooser.choose(['gzip;q=0.5', 'br;q=0.1'])).toBe('gzip');
  });
});
