/**
 * Config errors as values. Every stage of loading (YAML, ${VAR}, schema,
 * semantic checks) reports `Problem`s against a key path; the loader then
 * places each one at a line and column of the file, so a user always gets
 * "file:line:col key.path: message", like a compiler.
 */

/** One error in a config file, placed as precisely as the stage that found it allows. */
export interface ConfigError {
  /** The file as the user named it (not made absolute, so messages stay short). */
  file: string;
  /** 1-based; absent for file-level errors (unreadable, empty). */
  line?: number;
  /** 1-based. */
  column?: number;
  /** Key path such as `ingress.routes[2].upstream`; '' for the file or the document as a whole. */
  path: string;
  message: string;
  /** Set on a warning (LoadResult `warnings`). */
  warning?: boolean;
}

/** A key in a map or an index in a list. */
export type PathSegment = string | number;

/** An error before it is placed in the file. */
export interface Problem {
  path: readonly PathSegment[];
  message: string;
  /**
   * What to point at: the key itself (an unknown or misnamed key), the value
   * (default), or the map that lacks a required key.
   */
  at?: 'key' | 'value' | 'missing';
  /** A source offset that wins over the path (YAML syntax errors, ${VAR} in a scalar). */
  offset?: number;
  /**
   * `error` (default): the config cannot be used. `warning`: it can, but the
   * user should know (printed by `check`, logged at start). `running`: the file
   * is right but the state of the world is not (an expired certificate): an
   * error for a start or reload, a warning for `check`.
   */
  severity?: 'error' | 'warning' | 'running';
}

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** `['ingress', 'routes', 2, 'upstream']` -> `ingress.routes[2].upstream`; odd keys are quoted: `upstreams["a.b"]`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (PLAIN_KEY.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** The value at `path` inside a parsed document (undefined where the path leads nowhere). */
export function valueAt(input: unknown, path: readonly PathSegment[]): unknown {
  let value = input;
  for (const segment of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PathSegment, unknown>)[segment];
  }
  return value;
}

/**
 * `config/sidecar.yaml:14:7 ingress.routes[2].upstream: unknown upstream "paymets" (known: app, payments)`.
 * Without a position: `file path: message`; without a path: `file:line:col: message` / `file: message`.
 */
export function formatConfigError(e: ConfigError): string {
  const where = e.line === undefined ? e.file : `${e.file}:${e.line}:${e.column ?? 1}`;
  const message = e.warning ? `warning: ${e.message}` : e.message;
  return e.path === '' ? `${where}: ${message}` : `${where} ${e.path}: ${message}`;
}

/** File-level errors first, then by line and column; the sort is stable so a stage's own order survives ties. */
export function sortErrors(errors: readonly ConfigError[]): ConfigError[] {
  return [...errors].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}

/** Short, stable wording for the errors people actually hit; anything else keeps Node's message. */
export function errnoText(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'does not exist';
    case 'EACCES':
    case 'EPERM':
      return 'is not readable (permission denied)';
    case 'EISDIR':
      return 'is a directory';
    case 'ENOTDIR':
      return 'does not exist (a parent is not a directory)';
    default:
      return error instanceof Error ? error.message : String(error);
  }
}
