/**
 * What a config holds that must never be shown, found once at load time and
 * carried by the snapshot, so every place that shows a config value (the admin
 * port, log lines, config errors) asks the same question of the same answer.
 *
 * Two kinds of secret:
 * - by position: a value that came from `${VAR}`, a value under a key named
 *   like a secret (password, token, ...), `egress.auth.password`, header rule
 *   values and `app.env` values. Shown as `[redacted]`; a URL keeps its
 *   scheme, host and path but loses its userinfo and query string.
 * - by value: the text of those secrets that can end up inside other text (a
 *   config error that quotes a value, a listen address in an error). `text()`
 *   blanks each occurrence.
 */
import type { Config } from './schema.ts';
import { formatPath, valueAt } from './errors.ts';
import type { PathSegment, Problem } from './errors.ts';

export const REDACTED = '[redacted]';

/** Key names whose values are secret wherever they appear (also inside app.env: DB_PASSWORD, API_TOKEN, ...). */
const SECRET_KEY = /password|passwd|secret|token|authorization|cookie|api[-_]?key|credential|private[-_]?key/i;

/** Positions whose values are redacted whatever their key is called ('*' matches any one segment). */
const SECRET_POSITIONS: ReadonlyArray<readonly string[]> = [
  ['app', 'env', '*'],
  ['*', 'routes', '*', 'headers', 'request', 'add', '*'],
  ['*', 'routes', '*', 'headers', 'response', 'add', '*'],
  ['tracing', 'headers', '*'],
];

/**
 * A `${VAR}` value shorter than this is still redacted where it stands, but
 * not searched for inside other text: blanking every "80" or "on" in an error
 * message would hide the message, and one or two characters hide nothing.
 */
const MIN_SEARCHED = 3;

/** scheme://[userinfo@]authority[path][?query][#fragment], read loosely so a template with [redacted] in it still splits. */
const URL_PARTS = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)(?:([^/?#]*)@)?([^?#]*)(\?[^#]*)?(#.*)?$/;

/** What `${VAR}` substitution did to one scalar (env.ts). */
export interface Substituted {
  /** The scalar as written, each reference replaced by [redacted]. */
  readonly shown: string;
  /** The environment values that went into it. */
  readonly values: readonly string[];
}

export class Secrets {
  /** A config with no secrets (a test's hand-made snapshot). */
  static readonly NONE = new Secrets(new Map(), []);

  /** formatPath(path) -> how a value that came from `${VAR}` is shown. */
  readonly #substituted: ReadonlyMap<string, string>;
  /** Longest first, so a secret that contains another is blanked whole. */
  readonly #values: readonly string[];

  constructor(substituted: ReadonlyMap<string, string>, values: Iterable<string>) {
    this.#substituted = substituted;
    this.#values = [...new Set(values)].filter((value) => value.length > 0).sort((a, b) => b.length - a.length);
  }

  /** `text` with every secret value in it replaced by [redacted]. */
  text(text: string): string {
    let out = text;
    for (const value of this.#values) if (out.includes(value)) out = out.split(value).join(REDACTED);
    return out;
  }

  /** How the config value at `path` may be shown (in /config, /upstreams, a log line). */
  shown<T>(path: readonly PathSegment[], value: T): T | string {
    if (isSecretPosition(path)) return REDACTED;
    const substituted = this.#substituted.get(formatPath(path));
    if (substituted !== undefined) return typeof value === 'string' ? shownUrl(substituted) : substituted;
    return typeof value === 'string' ? shownUrl(value) : value;
  }

  /** A deep copy of `config` as the admin port shows it. */
  config(config: Config): unknown {
    return this.#copy(config, []);
  }

  #copy(value: unknown, path: PathSegment[]): unknown {
    if (Array.isArray(value)) return value.map((item, index) => this.#copy(item, [...path, index]));
    if (value !== null && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [key, inner] of Object.entries(value)) out[key] = this.#copy(inner, [...path, key]);
      return out;
    }
    return this.shown(path, value);
  }

  /**
   * A config error as it may be shown: the value at its own path is blanked when
   * that value is secret (short or not), then every secret value.
   */
  problem(problem: Problem, input: unknown): Problem {
    let message = problem.message;
    const own = valueAt(input, problem.path);
    const ownText = typeof own === 'string' || typeof own === 'number' ? String(own) : '';
    if (ownText !== '' && (this.#substituted.has(formatPath(problem.path)) || isSecretPosition(problem.path))) {
      message = message.split(JSON.stringify(ownText)).join(`"${REDACTED}"`).split(ownText).join(REDACTED);
    }
    message = this.text(message);
    return message === problem.message ? problem : { ...problem, message };
  }
}

/**
 * Finds the secrets of a config: `input` is the document after substitution
 * and before validation (so errors can be redacted too), `substituted` what
 * env.ts recorded per path.
 */
export function findSecrets(input: unknown, substituted: ReadonlyMap<string, Substituted>): Secrets {
  const shown = new Map<string, string>();
  const values: string[] = [];
  for (const [path, { shown: text, values: used }] of substituted) {
    shown.set(path, text);
    for (const value of used) if (value.length >= MIN_SEARCHED) values.push(value);
  }
  walk(input, [], (path, value) => {
    if (isCredential(path)) {
      // Searched for however short: a password may be quoted by an error about another key.
      values.push(String(value), ...(substituted.get(formatPath(path))?.values ?? []));
    }
    if (typeof value === 'string') values.push(...urlSecrets(value));
  });
  return new Secrets(shown, values.flatMap(withEscapes));
}

/** True for `egress.auth.password`, header rule values, app.env values and any key named like a secret. */
export function isSecretPosition(path: readonly PathSegment[]): boolean {
  return isCredential(path) || SECRET_POSITIONS.some(
    (pattern) => pattern.length === path.length && pattern.every((segment, index) => segment === '*' || segment === String(path[index])),
  );
}

/**
 * A password, a token: a value searched for inside other text too. Header rule
 * and app.env values in general are not (`x-from: sidecar`, `PORT: "3000"`
 * would blank every "sidecar" and "3000" of a message), only where they stand.
 */
function isCredential(path: readonly PathSegment[]): boolean {
  const last = path[path.length - 1];
  return typeof last === 'string' && SECRET_KEY.test(last);
}

/** A URL without its userinfo and query (`https://[redacted]@host/path?[redacted]`); any other text as it is. */
export function shownUrl(text: string): string {
  const parts = URL_PARTS.exec(text);
  if (!parts) return text;
  const [, scheme, userinfo, rest, query, fragment] = parts;
  if (userinfo === undefined && query === undefined) return text;
  return `${scheme}${userinfo === undefined ? '' : `${REDACTED}@`}${rest}${query === undefined ? '' : `?${REDACTED}`}${fragment ?? ''}`;
}

/** The userinfo and query of a URL, as written and as decoded. */
function urlSecrets(text: string): string[] {
  const parts = URL_PARTS.exec(text);
  if (!parts) return [];
  const [, , userinfo, , query] = parts;
  const found: string[] = [];
  if (userinfo !== undefined && userinfo !== '') found.push(userinfo, ...userinfo.split(':').filter((part) => part.length >= MIN_SEARCHED));
  if (query !== undefined && query.length > 1) found.push(query.slice(1));
  return found.flatMap((raw) => {
    try {
      return [raw, decodeURIComponent(raw)];
    } catch {
      return [raw];
    }
  });
}

/** A value and its JSON-escaped form: a message that quotes it with JSON.stringify shows the escaped one. */
function withEscapes(value: string): string[] {
  const escaped = JSON.stringify(value).slice(1, -1);
  return escaped === value ? [value] : [value, escaped];
}

function walk(value: unknown, path: PathSegment[], onScalar: (path: PathSegment[], value: string | number) => void): void {
  if (Array.isArray(value)) value.forEach((item, index) => walk(item, [...path, index], onScalar));
  else if (value !== null && typeof value === 'object') for (const [key, inner] of Object.entries(value)) walk(inner, [...path, key], onScalar);
  else if (typeof value === 'string' || typeof value === 'number') onScalar(path, value);
}
