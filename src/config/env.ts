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
import { isAlias, isMap, isScalar, isSeq } from 'yaml';
import type { Document, Scalar } from 'yaml';
import type { z } from 'zod';
import { formatPath, valueAt } from './errors.ts';
import type { PathSegment, Problem } from './errors.ts';
import { REDACTED, type Substituted } from './secrets.ts';

const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;
// YAML 1.2 core schema spellings, so a substituted value reads like a literal one.
const NUMBER = /^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/;
const BOOLEAN: Record<string, boolean> = { true: true, True: true, TRUE: true, false: false, False: false, FALSE: false };

/**
 * Substitutes references in every string value of `doc` in place. Returns one
 * Problem per bad reference, and per path (as `formatPath` text) of a value
 * that came from a variable, how it may be shown and what went into it: for
 * `coerceSubstituted`, and so that no such value is ever shown (secrets.ts).
 */
export function substituteEnv(doc: Document, env: NodeJS.ProcessEnv): { problems: Problem[]; substituted: Map<string, Substituted> } {
  const problems: Problem[] = [];
  const substituted = new Map<string, Substituted>();
  // An anchored scalar is substituted once, and recorded at every path an alias copies it to.
  const done = new Map<Scalar, Substituted | undefined>();
  visit(doc, doc.contents, [], new Set(), (scalar, path) => {
    if (done.has(scalar)) {
      const earlier = done.get(scalar);
      if (earlier) substituted.set(formatPath(path), earlier);
      return;
    }
    const text = scalar.value as string;
    done.set(scalar, undefined);
    if (!text.includes('$')) return;
    const result = expand(text, env);
    if ('error' in result) {
      problems.push({ path, message: result.error, offset: scalar.range?.[0] });
      return;
    }
    scalar.value = result.text;
    if (!result.substituted) return;
    const record = { shown: result.shown, values: result.values };
    done.set(scalar, record);
    substituted.set(formatPath(path), record);
  });
  return { problems, substituted };
}

/**
 * Every string scalar with the path it gets in the JS value: an alias is
 * followed (its copy lands at the alias's path) and a merge key (`<<: *base`)
 * puts the merged keys at the path of the map that holds it.
 */
function visit(doc: Document, node: unknown, path: PathSegment[], open: Set<unknown>, onString: (scalar: Scalar, path: PathSegment[]) => void): void {
  if (isAlias(node)) {
    const target = node.resolve(doc);
    if (target && !open.has(target)) visit(doc, target, path, open, onString);
    return;
  }
  if (isMap(node) || isSeq(node)) {
    open.add(node);
    if (isSeq(node)) node.items.forEach((item, index) => visit(doc, item, [...path, index], open, onString));
    else {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        // With `merge: true` the parser gives a merge key a symbol value.
        const merge = isScalar(pair.key) && (typeof pair.key.value === 'symbol' || key === '<<') && !isScalar(pair.value);
        if (merge && isSeq(pair.value)) for (const base of pair.value.items) visit(doc, base, path, open, onString);
        else visit(doc, pair.value, merge ? path : [...path, key], open, onString);
      }
    }
    open.delete(node);
  } else if (isScalar(node) && typeof node.value === 'string') {
    onString(node, path);
  }
}

/**
 * Converts substituted strings that the schema refused only for being strings
 * where it wants a number or boolean. Mutates `input`; returns whether anything
 * changed (then the caller validates again).
 */
export function coerceSubstituted(input: unknown, issues: readonly z.core.$ZodIssue[], substituted: { has(path: string): boolean }): boolean {
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

/**
 * Expands one string; `substituted` says whether any variable (not just an
 * escape) was involved, `shown` is the text with each reference [redacted] and
 * `values` the environment values used (a default written in the file is not
 * one: it is no secret).
 */
export function expand(
  text: string,
  env: NodeJS.ProcessEnv,
): { text: string; substituted: boolean; shown: string; values: string[] } | { error: string } {
  let out = '';
  let shown = '';
  const values: string[] = [];
  let substituted = false;
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      out += '${';
      shown += '${';
      i += 3;
      continue;
    }
    if (!text.startsWith('${', i)) {
      out += text[i];
      shown += text[i];
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
    else {
      out += value;
      values.push(value);
    }
    shown += REDACTED;
    substituted = true;
    i = end + 1;
  }
  return { text: out, substituted, shown, values };
}
