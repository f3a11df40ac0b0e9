/**
 * Config file -> validated, frozen Config, or every error in it at once.
 *
 * read -> YAML (with line:col) -> ${VAR} on scalar values -> zod schema ->
 * semantic checks -> relative paths made absolute -> deep freeze.
 *
 * Each stage reports all it finds. A broken YAML tree stops there (the later
 * stages would only guess); schema and ${VAR} errors come together with the
 * semantic errors of the part of the config they leave valid (salvage.ts), so
 * one `check` shows every error. Nothing in here throws: the CLI prints the
 * errors, and a reload keeps the old config.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { coerceSubstituted, substituteEnv } from './env.ts';
import { formatPath, sortErrors } from './errors.ts';
import type { ConfigError, Problem } from './errors.ts';
import { issueProblems } from './issues.ts';
import { configSchema } from './schema.ts';
import type { Config } from './schema.ts';
import { findSecrets, Secrets } from './secrets.ts';
import { salvageChecks } from './salvage.ts';
import { checkConfig, errnoText, resolvePaths } from './semantic.ts';
import { parseYaml, placeProblems } from './yaml-doc.ts';

export type { ConfigError } from './errors.ts';
export { formatConfigError } from './errors.ts';

/** The outcome of a load: a usable config with its identity, or the complete list of errors (sorted by line, column). */
export type LoadResult =
  | { ok: true; config: Config; hash: string; source: string; text: string; loadedAt: Date; secrets: Secrets; warnings: ConfigError[] }
  | { ok: false; errors: ConfigError[]; warnings?: ConfigError[] };

export interface LoadOptions {
  /**
   * For `check`: what only a running sidecar must refuse (an expired
   * certificate: the file is right, the clock says it cannot serve) is a
   * warning, not an error.
   */
  readonly check?: boolean;
}

/** Far above any real config; stops a wrong path (a log, a disk image) from being read into memory whole. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/**
 * Reads and validates a config file. Never throws: a missing, unreadable or
 * non-regular file is an `ok: false` result like any other error.
 *
 * @param file the path as the user gave it; errors name it as given, `source` is it made absolute (symlinks are not resolved, so a
 *   Kubernetes `..data` link keeps its stable name)
 * @param env where `${VAR}` values come from (default: `process.env`)
 */
export async function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): Promise<LoadResult> {
  let bytes: Buffer;
  try {
    // stat first: readFile on a FIFO or a device would block or never end.
    const info = await stat(file);
    if (info.isDirectory()) return fileError(file, 'is a directory, not a config file');
    if (!info.isFile()) return fileError(file, 'is not a regular file');
    if (info.size > MAX_CONFIG_BYTES) return fileError(file, `is too large for a config file (${info.size} bytes)`);
    bytes = await readFile(file);
  } catch (error) {
    return fileError(file, `cannot read config file: it ${errnoText(error)}`);
  }
  return load(bytes.toString('utf8'), file, env, sha256(bytes), options);
}

/**
 * Validates config text as if it had been read from `file` (relative paths in
 * it are resolved against `file`'s folder). Pure apart from the checks of files
 * the config names (static roots, CA files). `hash` is that of the UTF-8 text.
 */
export function loadConfigText(text: string, file: string, env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): LoadResult {
  return load(text, file, env, sha256(Buffer.from(text, 'utf8')), options);
}

function load(text: string, file: string, env: NodeJS.ProcessEnv, hash: string, options: LoadOptions): LoadResult {
  try {
    const source = resolve(file);
    const outcome = validate(text, file, dirname(source), env, options);
    const warnings = sortErrors(outcome.warnings);
    if (!outcome.ok) return { ok: false, errors: sortErrors(outcome.errors), warnings };
    return { ok: true, config: deepFreeze(outcome.config), hash, source, text, loadedAt: new Date(), secrets: outcome.secrets, warnings };
  } catch (error) {
    // A bug of ours must not take the sidecar down on a reload: report it like a config error.
    const message = error instanceof Error ? error.message : String(error);
    return fileError(file, `internal error while loading the config: ${message}`);
  }
}

function validate(
  text: string,
  file: string,
  baseDir: string,
  env: NodeJS.ProcessEnv,
  options: LoadOptions,
): ({ ok: true; config: Config; secrets: Secrets } | { ok: false; errors: ConfigError[] }) & { warnings: ConfigError[] } {
  const { parsed, problems: yamlProblems } = parseYaml(text);
  let secrets = Secrets.NONE;
  let input: unknown;
  // Every error goes out through here: one that quotes a secret value (`got "s3cr3t"`) has it blanked.
  const place = (problems: readonly Problem[], warning: boolean) =>
    placeProblems(parsed, problems.map((problem) => secrets.problem(problem, input)), file).map((error) => (warning ? { ...error, warning } : error));
  const isWarning = (problem: Problem) => problem.severity === 'warning' || (problem.severity === 'running' && options.check === true);
  const split = (problems: readonly Problem[]) => ({
    errors: place(problems.filter((problem) => !isWarning(problem)), false),
    warnings: place(problems.filter(isWarning), true),
  });
  const fail = (problems: readonly Problem[]) => ({ ok: false as const, ...split(problems) });
  if (yamlProblems.length > 0) return fail(yamlProblems);
  if (parsed.doc.contents === null) {
    // An empty file is far more likely a truncated write than a wish for an all-defaults sidecar that routes nothing.
    return { ok: false, errors: [{ file, path: '', message: 'the config file is empty' }], warnings: [] };
  }

  const { problems: envProblems, substituted } = substituteEnv(parsed.doc, env);
  try {
    // maxAliasCount: a "billion laughs" file fails here instead of eating the heap.
    input = parsed.doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    return fail([{ path: [], message: `cannot expand the YAML: ${error instanceof Error ? error.message : String(error)}` }]);
  }
  secrets = findSecrets(input, substituted);
  let result = configSchema.safeParse(input);
  if (!result.success && coerceSubstituted(input, result.error.issues, substituted)) result = configSchema.safeParse(input);

  // A reference that could not be substituted is reported once, not again as the schema's complaint about "${X}".
  const envPaths = new Set(envProblems.map((problem) => formatPath(problem.path)));
  const schemaProblems = result.success
    ? []
    : issueProblems(result.error.issues, input, configSchema).filter((problem) => problem.at === 'key' || !envPaths.has(formatPath(problem.path)));
  if (envProblems.length > 0 || !result.success) {
    const problems = [...envProblems, ...schemaProblems];
    return fail([...problems, ...salvageChecks(input, problems, configSchema, baseDir)]);
  }

  const config = result.data;
  resolvePaths(config, baseDir);
  const semantic = split(checkConfig(config));
  if (semantic.errors.length > 0) return { ok: false, ...semantic };
  return { ok: true, config, secrets, warnings: semantic.warnings };
}

function fileError(file: string, message: string): { ok: false; errors: ConfigError[] } {
  return { ok: false, errors: [{ file, path: '', message }] };
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Freezes every object and array reachable from `value`, so no holder of a snapshot can change what others see. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}
