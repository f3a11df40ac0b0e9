/**
 * HTTP semantics of a static answer that `fresh` and `range-parser` do not
 * cover: the validators (ETag, Last-Modified), If-Match / If-Unmodified-Since
 * (412), If-Range, Accept-Encoding and Cache-Control. The order and the rules follow `send` (index.js,
 * isPreconditionFailure / isFresh / isRangeFresh), whose own test cases run in
 * test/static.test.ts; the one deliberate difference is noted on each function.
 */
import type { BigIntStats } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { extname } from 'node:path';
import fresh from 'fresh';
import { contentType } from 'mime-types';
import rangeParser from 'range-parser';
import { acceptedCodings, type Coding } from '../policy/accept-encoding.ts';

/** A content coding of a file: precompressed beside it, or compressed on the fly (static-encode.ts). */
export type Encoding = Coding;

/** The suffix of each precompressed sibling (`app.js.br`, `app.js.zst`, `app.js.gz`). */
export const ENCODING_SUFFIX: Readonly<Record<Encoding, string>> = { br: '.br', zstd: '.zst', gzip: '.gz' };

/** Which precompressed sibling wins when the client weighs several alike (Caddy's order: br, zstd, gzip). */
const PRECOMPRESSED_ORDER: readonly Encoding[] = ['br', 'zstd', 'gzip'];

/** send's parseTokenList: comma-separated, blanks around tokens ignored, empty items dropped. */
export function parseTokenList(value: string): string[] {
  return value
    .split(',')
    .map((token) => token.trim())
    .filter((token) => token !== '');
}

/** Date.parse of an HTTP date, NaN when absent or invalid. */
export function parseHttpDate(value: string | undefined): number {
  return value ? Date.parse(value) : Number.NaN;
}

/** Any validator present: only then are preconditions and freshness evaluated (send: isConditionalGET). */
export function isConditional(headers: IncomingHttpHeaders): boolean {
  return Boolean(
    headers['if-match'] || headers['if-unmodified-since'] || headers['if-none-match'] || headers['if-modified-since'],
  );
}

/**
 * 412 when If-Match names none of our tags, or (without If-Match) the file was
 * modified after If-Unmodified-Since. Unlike send, If-Match uses the strong
 * comparison RFC 9110 13.1.1 requires: `W/"x"` never matches (our tags are strong).
 */
export function isPreconditionFailure(headers: IncomingHttpHeaders, etag: string, lastModified: string): boolean {
  const match = headers['if-match'];
  if (match) {
    if (match.trim() === '*') return false;
    return !parseTokenList(match).includes(etag);
  }
  const unmodifiedSince = parseHttpDate(headers['if-unmodified-since']);
  if (!Number.isNaN(unmodifiedSince)) {
    const modified = parseHttpDate(lastModified);
    return Number.isNaN(modified) || modified > unmodifiedSince;
  }
  return false;
}

/** If-None-Match / If-Modified-Since say the client's copy is current: 304 (jshttp/fresh). */
export function isFresh(headers: IncomingHttpHeaders, etag: string, lastModified: string): boolean {
  return fresh(headers, { etag, 'last-modified': lastModified });
}

/**
 * If-Range: ranges apply only while the client's validator still holds. An
 * entity tag must equal ours exactly (a strong comparison, RFC 9110 13.1.5;
 * send looks for a substring); a date must not be older than Last-Modified
 * (send's rule); anything else turns the range request into a full 200.
 */
export function isRangeFresh(headers: IncomingHttpHeaders, etag: string, lastModified: string): boolean {
  const raw = headers['if-range'];
  const ifRange = Array.isArray(raw) ? raw[0] : raw;
  if (!ifRange) return true;
  if (ifRange.includes('"')) return ifRange.trim() === etag;
  return parseHttpDate(lastModified) <= parseHttpDate(ifRange);
}

export type RangeDecision =
  | { kind: 'full' }
  | { kind: 'partial'; start: number; end: number }
  | { kind: 'unsatisfiable' };

const BYTES_RANGE = /^ *bytes=/;

/**
 * The one range we will serve. Several ranges are combined when they touch;
 * if they still are several, or the header is malformed or not in bytes, the
 * whole file is sent (as send does: no multipart/byteranges).
 */
export function decideRange(headers: IncomingHttpHeaders, size: number, etag: string, lastModified: string): RangeDecision {
  const header = headers.range;
  if (!header || !BYTES_RANGE.test(header)) return { kind: 'full' };
  const ranges = rangeParser(size, header, { combine: true });
  if (!isRangeFresh(headers, etag, lastModified)) return { kind: 'full' };
  if (ranges === -1) return { kind: 'unsatisfiable' };
  if (ranges === -2 || ranges.length !== 1) return { kind: 'full' };
  return { kind: 'partial', start: ranges[0].start, end: ranges[0].end };
}

/**
 * The precompressed variants the client accepts, best first: q-values are
 * honoured (`br;q=0` refuses br), `*` covers them all, and on a tie br wins,
 * then zstd, then gzip (policy/accept-encoding.ts).
 */
export function acceptedEncodings(header: string | string[] | undefined): Encoding[] {
  return acceptedCodings(header, PRECOMPRESSED_ORDER);
}

/** send's ceiling: a max-age of more than a year is taken as a year. */
const MAX_AGE_CAP_MS = 365 * 24 * 60 * 60 * 1000;

/**
 * `public, max-age=N[, immutable]`; a max-age under one second is `no-cache`
 * (store, but revalidate every time: with strong ETags that is a cheap 304),
 * and `immutable` is then dropped since it would contradict it.
 */
export function cacheControl(maxAgeMs: number, immutable: boolean): string {
  const seconds = Math.floor(Math.min(Math.max(0, maxAgeMs), MAX_AGE_CAP_MS) / 1000);
  if (seconds === 0) return 'no-cache';
  return `public, max-age=${seconds}${immutable ? ', immutable' : ''}`;
}

const types = new Map<string, string>();

/** Content-Type from the extension of the requested name; text types get charset=utf-8 (mime-types). */
export function typeFor(name: string): string {
  const ext = extname(name).toLowerCase();
  let type = types.get(ext);
  if (type === undefined) {
    type = (ext && contentType(ext)) || 'application/octet-stream';
    types.set(ext, type); // bounded: only extensions of files that exist and were served
  }
  return type;
}

interface Validators {
  readonly etag: string;
  readonly lastModified: string;
}

/**
 * ETag and Last-Modified of one stat of a file, per encoding. A hot file's
 * stat object is reused for `cache.revalidate` (static-resolve.ts), so they
 * are made once per stat and encoding instead of once per request (two
 * BigInt-to-hex and a date format).
 */
const validatorsByStat = new WeakMap<BigIntStats, Map<Encoding | undefined, Validators>>();

export function validatorsOf(stat: BigIntStats, encoding: Encoding | undefined): Validators {
  let byEncoding = validatorsByStat.get(stat);
  if (!byEncoding) {
    byEncoding = new Map();
    validatorsByStat.set(stat, byEncoding);
  }
  let validators = byEncoding.get(encoding);
  if (!validators) {
    validators = {
      // A strong validator from size and mtime (ns), as NGINX does; the inode is left
      // out so replicas that deployed the same files agree. Each encoding has its own tag:
      // a precompressed variant is its own file, and one compressed on the fly shares
      // the file's stat with the identity bytes and its other encodings.
      etag: `"${stat.size.toString(16)}-${stat.mtimeNs.toString(16)}${encoding ? `-${encoding}` : ''}"`,
      lastModified: stat.mtime.toUTCString(),
    };
    byEncoding.set(encoding, validators);
  }
  return validators;
}
