/**
 * The path a route decision is made on is the path the upstream will see.
 * A request target is normalised once, at entry, as NGINX does for every
 * location match and as Envoy recommends (`normalize_path` +
 * `merge_slashes`): unreserved characters percent-decoded, the remaining
 * escapes upper-cased, repeated slashes merged, dot segments removed (RFC
 * 3986 5.2.4, `%2e` included). The result, with the original query string,
 * is matched, rewritten and forwarded, so `/api/%2e%2e/admin/x` can no
 * longer be routed as `/api/` and resolved by the upstream as `/admin/x`.
 *
 * `%2F` and `%5C` stay encoded: decoding them would change which bytes are
 * separators (Envoy's default, `KEEP_UNCHANGED`); a listener may refuse them
 * instead. A raw `\` is sent on as `%5C`: WHATWG URL parsers (`new URL()` in
 * a Node upstream) read it as `/`, file systems and NGINX as a character, and
 * encoding it keeps the one meaning the route was chosen on.
 */

/** How a listener treats request paths (the listener's `paths` key). */
export interface PathOptions {
  /** Decode unreserved escapes and remove dot segments (default true). */
  readonly normalize: boolean;
  /** `//` -> `/` (default true). */
  readonly mergeSlashes: boolean;
  /** `%2F`, `%5C` (and a raw `\`) are 400 instead of being passed on encoded (default false). */
  readonly rejectEncodedSlashes: boolean;
}

export const DEFAULT_PATH_OPTIONS: PathOptions = Object.freeze({ normalize: true, mergeSlashes: true, rejectEncodedSlashes: false });

/** Why a path is refused (400 bad_request); the instances are constants, so a refusal allocates nothing. */
export interface PathRefusal {
  readonly reason: string;
}

const MALFORMED: PathRefusal = Object.freeze({ reason: 'malformed percent-encoding in the path' });
const ABOVE_ROOT: PathRefusal = Object.freeze({ reason: 'the path climbs above the root' });
const ENCODED_SLASH: PathRefusal = Object.freeze({ reason: 'encoded slash or backslash in the path (%2F, %5C, \\) refused by this listener' });

const PERCENT = 0x25;
const SLASH = 0x2f;
const DOT = 0x2e;
const BACKSLASH = 0x5c;
const QUESTION = 0x3f;

/**
 * `target` (origin-form path with optional query) normalised, the query kept
 * as it came; the very same string when nothing had to change, or a refusal.
 * A target with no `%`, `\`, `//` or `/.` before its query costs one scan.
 */
export function normalizeTarget(target: string, options: PathOptions): string | PathRefusal {
  const end = pathEnd(target);
  if (!options.normalize) return options.rejectEncodedSlashes && hasEncodedSlash(target, end) ? ENCODED_SLASH : target;
  if (!needsWork(target, end)) return target;
  const path = normalizeSlow(target.slice(0, end), options);
  if (typeof path !== 'string') return path;
  return end === target.length ? path : path + target.slice(end);
}

/** Where the path ends: the `?` of the query, or the end. */
function pathEnd(target: string): number {
  const q = target.indexOf('?');
  return q === -1 ? target.length : q;
}

function needsWork(target: string, end: number): boolean {
  for (let i = 0; i < end; i++) {
    const c = target.charCodeAt(i);
    if (c === PERCENT || c === BACKSLASH) return true;
    if (c === SLASH && i + 1 < end) {
      const next = target.charCodeAt(i + 1);
      if (next === SLASH || next === DOT) return true;
    }
  }
  return false;
}

function hasEncodedSlash(target: string, end: number): boolean {
  for (let i = 0; i < end; i++) {
    const c = target.charCodeAt(i);
    if (c === BACKSLASH) return true;
    if (c === PERCENT && i + 2 < end) {
      const high = target.charCodeAt(i + 1);
      const low = target.charCodeAt(i + 2) | 0x20;
      if ((high === 0x32 && low === 0x66) || (high === 0x35 && low === 0x63)) return true; // %2f, %5c
    }
  }
  return false;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/** RFC 3986 2.3: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(byte: number): boolean {
  const lower = byte | 0x20;
  return (lower >= 0x61 && lower <= 0x7a) || (byte >= 0x30 && byte <= 0x39) || byte === 0x2d || byte === DOT || byte === 0x5f || byte === 0x7e;
}

const HEX = '0123456789ABCDEF';

/** The decoding pass: unreserved escapes decoded, others upper-cased, a raw `\` encoded. */
function decodeUnreserved(path: string, options: PathOptions): string | PathRefusal {
  let out = '';
  let from = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === BACKSLASH) {
      if (options.rejectEncodedSlashes) return ENCODED_SLASH;
      out += `${path.slice(from, i)}%5C`;
      from = i + 1;
      continue;
    }
    if (c !== PERCENT) continue;
    const high = i + 2 < path.length ? hexValue(path.charCodeAt(i + 1)) : -1;
    const low = i + 2 < path.length ? hexValue(path.charCodeAt(i + 2)) : -1;
    if (high < 0 || low < 0) return MALFORMED;
    const byte = high * 16 + low;
    if ((byte === SLASH || byte === BACKSLASH) && options.rejectEncodedSlashes) return ENCODED_SLASH;
    out += path.slice(from, i) + (isUnreserved(byte) ? String.fromCharCode(byte) : `%${HEX[high]}${HEX[low]}`);
    from = i + 3;
    i += 2;
  }
  return from === 0 ? path : out + path.slice(from);
}

/** Decoding, then merged slashes and dot-segment removal on the segments (NGINX's order: `//..` climbs one level). */
function normalizeSlow(path: string, options: PathOptions): string | PathRefusal {
  const decoded = decodeUnreserved(path, options);
  if (typeof decoded !== 'string') return decoded;
  const parts = decoded.split('/');
  const out: string[] = [];
  const last = parts.length - 1;
  // parts[0] is the empty string before the leading slash.
  for (let i = 1; i <= last; i++) {
    const segment = parts[i];
    if (segment === '.') {
      if (i === last) out.push('');
    } else if (segment === '..') {
      if (out.length === 0) return ABOVE_ROOT;
      out.pop();
      if (i === last) out.push('');
    } else if (segment !== '' || i === last || !options.mergeSlashes) {
      out.push(segment);
    }
  }
  return `/${out.join('/')}`;
}
