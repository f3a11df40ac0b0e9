/**
 * From a request target to a file inside the static root, without ever leaving
 * it. Two independent guards: the request path is decoded exactly once and every
 * segment that could climb or smuggle a separator is refused (the string check),
 * then the real path of what was found must lie inside the real path of the root
 * (the file-system check, which is what stops symlinks pointing outside).
 */
import { realpath, stat } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { join, relative, sep, isAbsolute } from 'node:path';

/** What the request target says, before the file system is asked. */
export type ParsedPath =
  /** Segments are decoded, non-empty, and safe to join under the root. */
  | { kind: 'ok'; segments: string[]; trailingSlash: boolean; pathname: string; search: string }
  /** Malformed: bad percent-encoding (overlong UTF-8 included), a NUL byte, a target that is no path. */
  | { kind: 'bad_request'; reason: string }
  /** Well-formed but can never name a file of this root (`..`, `\`, `%2f`, a dotfile when hidden, another prefix). */
  | { kind: 'not_found'; reason: string };

const ENCODED_SEPARATOR = /%(2f|5c)/i;

/** Splits a request target into its raw path and query string (origin-form or absolute-form). */
function splitTarget(url: string): { pathname: string; search: string } | undefined {
  let target = url;
  if (!target.startsWith('/')) {
    // absolute-form (RFC 9112 3.2.2): keep only the path.
    const match = /^https?:\/\/[^/?#]*/i.exec(target);
    if (!match) return undefined;
    target = target.slice(match[0].length) || '/';
    if (!target.startsWith('/')) target = `/${target}`;
  }
  const q = target.indexOf('?');
  return q === -1 ? { pathname: target, search: '' } : { pathname: target.slice(0, q), search: target.slice(q) };
}

/**
 * Maps the raw request target to segments under `prefix` (the route's
 * `match.path`): `/static/css/a.css` with prefix `/static/` is `['css', 'a.css']`.
 * Empty segments (`//`) are skipped, as a file system would.
 */
export function parseStaticPath(url: string, prefix: string, dotfiles: 'allow' | 'deny'): ParsedPath {
  const target = splitTarget(url);
  if (!target) return { kind: 'bad_request', reason: 'request target is not a path' };
  const { pathname, search } = target;

  let rest: string;
  if (pathname.startsWith(prefix)) {
    rest = pathname.slice(prefix.length);
    // A prefix without a trailing slash only matches whole segments: /static is not /staticfoo.
    if (!prefix.endsWith('/') && rest !== '' && !rest.startsWith('/')) {
      return { kind: 'not_found', reason: 'outside the route prefix' };
    }
  } else if (prefix.endsWith('/') && pathname === prefix.slice(0, -1)) {
    rest = ''; // "/static" for the prefix "/static/": the root folder without its slash.
  } else {
    return { kind: 'not_found', reason: 'outside the route prefix' };
  }

  const trailingSlash = pathname.endsWith('/');
  const segments: string[] = [];
  for (const raw of rest.split('/')) {
    if (raw === '') continue;
    if (ENCODED_SEPARATOR.test(raw)) return { kind: 'not_found', reason: 'encoded separator in a segment' };
    let segment: string;
    try {
      // Decoded once: %252e stays the literal "%2e", never "."; overlong UTF-8 (%c0%ae) throws.
      segment = decodeURIComponent(raw);
    } catch {
      return { kind: 'bad_request', reason: 'malformed percent-encoding' };
    }
    if (segment.includes('\0')) return { kind: 'bad_request', reason: 'NUL byte in path' };
    if (segment.includes('\\') || segment.includes('/')) return { kind: 'not_found', reason: 'separator in a segment' };
    if (segment === '.' || segment === '..') return { kind: 'not_found', reason: 'dot segment' };
    if (dotfiles === 'deny' && segment.startsWith('.')) return { kind: 'not_found', reason: 'dotfile' };
    segments.push(segment);
  }
  return { kind: 'ok', segments, trailingSlash, pathname, search };
}

/** True when `real` is `realRoot` or lies below it (both already real paths). */
export function isInside(realRoot: string, real: string): boolean {
  if (real === realRoot) return true;
  const base = realRoot.endsWith(sep) ? realRoot : realRoot + sep;
  return real.startsWith(base);
}

/** Errors that mean "no such file here" rather than a server fault. */
const MISSING = new Set(['ENOENT', 'ENOTDIR', 'ENAMETOOLONG', 'ELOOP', 'EINVAL']);

export function isMissingError(err: unknown): boolean {
  return MISSING.has((err as { code?: string } | undefined)?.code ?? '');
}

/** A path inside the root, resolved through every symlink, with its stat. */
export interface Resolved {
  /** The real path (symlinks resolved), the one to open. */
  real: string;
  stat: BigIntStats;
}

/** The real path of the root, read once per request (so a swapped `current -> release-N` link is seen at once). */
export function realRootOf(root: string): Promise<string> {
  return realpath(root);
}

/**
 * Resolves `candidate` (a path under the root) to its real path and checks it
 * is still inside `realRoot` (from realRootOf); with `dotfiles: deny` no
 * component of the real path below the root may start with a dot either (a
 * symlink named `a.txt` pointing at `.env` is still `.env`). Undefined when
 * missing or outside; other errors (EACCES, EIO) are thrown.
 */
export async function resolveInside(realRoot: Promise<string>, candidate: string, dotfiles: 'allow' | 'deny'): Promise<Resolved | undefined> {
  let rootReal: string;
  let real: string;
  try {
    [rootReal, real] = await Promise.all([realRoot, realpath(candidate)]);
  } catch (err) {
    if (isMissingError(err)) return undefined;
    throw err;
  }
  if (!isInside(rootReal, real)) return undefined;
  if (dotfiles === 'deny') {
    const below = relative(rootReal, real);
    if (isAbsolute(below) || below.split(sep).some((part) => part.startsWith('.'))) return undefined;
  }
  try {
    return { real, stat: await stat(real, { bigint: true }) };
  } catch (err) {
    if (isMissingError(err)) return undefined;
    throw err;
  }
}

/** `root` joined with already validated segments. */
export function joinUnder(root: string, segments: readonly string[]): string {
  return segments.length === 0 ? root : join(root, ...segments);
}

/** Location of the slash form of a folder: the client's own path + "/", query kept, never protocol-relative. */
export function slashLocation(pathname: string, search: string): string {
  return `${pathname.replace(/^\/+/, '/')}/${search}`;
}
