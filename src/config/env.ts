/**
 * `${VAR}` and `${VAR:-default}` substitution, done on the parsed document's
 * scalar values rather than on the raw text: positions of every other error
 * stay exact, and a value can never inject YAML structure (a variable holding
 * "a: b" stays one string).
 *
 * Rules (shell-like):
 * - `${VAR}` is the variable's value; unset is an error naming the variable.
 * - `${VAR:-default}` uses `default` when VAR is unset or empty.
 * - `$${VAR}` is a literal `${VAR}`; a `$` not followed by `{` is left alone.
 * - Only values are substituted, never keys.
 * - Substitution yields text. Where the schema wants a number or a boolean and
 *   the substituted text reads as one (`connections: ${CONN}` with CONN=64),
 *   it is converted, quoted or not; everywhere else it stays a string, so
 *   `PORT: ${PORT}` under `app.env` is the string "3000", as env wants.
 * - Inside flow collections (`{ a: ${X} }`) quote the reference: YAML ends a
 *   plain scalar at `}`.
 */
import { isMap, isScalar, isSeq } from 'yaml';
import type { Document, Scalar } from 'yaml';
import type { z } from 'zod';
import { formatPath } from './errors.ts';
import type { PathSegment, Problem } from './errors.ts';

const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;
// YAML 1.2 core schema spellings, so a substituted value reads like a literal one.
const NUMBER = /^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/;
const BOOLEAN: Record<string, boolean> = { true: true, True: true, TRUE: true, false: false, False: false, FALSE: false };

/**
 * Substitutes references in every string value of `doc` in place. Returns one
 * Problem per bad reference, and the paths (as `formatPath` text) of values
 * that came from a variable, for `coerceSubstituted`.
 */
export function substituteEnv(doc: Document, env: NodeJS.ProcessEnv): { problems: Problem[]; substituted: Set<string> } {
  const problems: Problem[] = [];
  const substituted = new Set<string>();
  visit(doc.contents, [], (scalar, path) => {
    const text = scalar.value as string;
    if (!text.includes('$')) return;
    const result = expand(text, env);
    if ('error' in result) {
      problems.push({ path, message: result.error, offset: scalar.range?.[0] });
      return;
    }
    scalar.value = result.text;
    if (result.substituted) substituted.add(formatPath(path));
  });
  return { problems, substituted };
}

// Aliases are skipped: the anchored node they point to is visited where it is defined.
function visit(node: unknown, path: PathSegment[], onString: (scalar: Scalar, path: PathSegment[]) => void): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      visit(pair.value, [...path, key], onString);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, index) => visit(item, [...path, index], onString));
  } else if (isScalar(node) && typeof node.value === 'string') {
    onString(node, path);
  }
}

/**
 * Converts substituted strings that the schema refused only for being strings
 * where it wants a number or boolean. Mutates `input`; returns whether anything
 * changed (then the caller validates again).
 */
export function coerceSubstituted(input: unknown, issues: readonly z.core.$ZodIssue[], substituted: ReadonlySet<string>): boolean {
  let changed = false;
  for (const { path, expected } of typeWants(issues, [])) {
    if (path.length === 0 || !substituted.has(formatPath(path))) continue;
    const parent = valueAt(input, path.slice(0, -1));
    const last = path[path.length - 1];
    if (parent === null || typeof parent !== 'object') continue;
    const holder = parent as Record<PathSegment, unknown>;
    const text = holder[last];
    if (typeof text !== 'string') continue;
    if (expected === 'boolean' && text in BOOLEAN) holder[last] = BOOLEAN[text];
    else if (expected !== 'boolean' && NUMBER.test(text.trim())) holder[last] = Number(text);
    else continue;
    changed = true;
  }
  return changed;
}

function typeWants(issues: readonly z.core.$ZodIssue[], prefix: PathSegment[]): Array<{ path: PathSegment[]; expected: string }> {
  const wants: Array<{ path: PathSegment[]; expected: string }> = [];
  for (const issue of issues) {
    const path = [...prefix, ...(issue.path as PathSegment[])];
    if (issue.code === 'invalid_type' && ['number', 'int', 'boolean'].includes(issue.expected)) wants.push({ path, expected: issue.expected });
    if (issue.code === 'invalid_union') for (const branch of issue.errors) wants.push(...typeWants(branch, path));
  }
  return wants;
}

function valueAt(input: unknown, path: readonly PathSegment[]): unknown {
  let value = input;
  for (const segment of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PathSegment, unknown>)[segment];
  }
  return value;
}

/** Expands one string; `substituted` says whether any variable (not just an escape) was involved. */
export function expand(text: string, env: NodeJS.ProcessEnv): { text: string; substituted: boolean } | { error: string } {
  let out = '';
  let substituted = false;
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      out += '${';
      i += 3;
      continue;
    }
    if (!text.startsWith('${', i)) {
      out += text[i];
      i += 1;
      continue;
    }
    const end = text.indexOf('}', i + 2);
    if (end === -1) return { error: `unterminated "\${" (write $\${ for a literal "\${")` };
    const inner = text.slice(i + 2, end);
    const reference = REFERENCE.exec(inner);
    if (!reference) return { error: `bad variable reference "\${${inner}}" (write \${NAME} or \${NAME:-default})` };
    const [, name, fallback] = reference;
    const value = env[name];
    if (fallback !== undefined && (value === undefined || value === '')) out += fallback;
    else if (value === undefined) return { error: `environment variable ${name} is not set (write \${${name}:-default} to give a default)` };
    else out += value;
    substituted = true;
    i = end + 1;
  }
  return { text: out, substituted };
}
