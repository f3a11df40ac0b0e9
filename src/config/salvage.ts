/**
 * The semantic checks on a config the schema refused. A user who fixes a typo
 * should not then learn of an unknown upstream, and after that of a missing
 * static root: `check` reports them all in one run, as a compiler reports
 * type errors next to syntax errors it could recover from.
 *
 * How: take out of a copy of the input each value the schema (or `${VAR}`)
 * refused, and validate again until what is left is valid. The semantic checks
 * then run on that partial config, and a finding is kept only when it does not
 * depend on something taken out (a route whose `upstrem:` typo was taken out
 * has no upstream, but saying so again would be noise).
 */
import type { z } from 'zod';
import type { PathSegment, Problem } from './errors.ts';
import { issueProblems, valueAt } from './issues.ts';
import type { Config } from './schema.ts';
import { checkConfig, resolvePaths } from './semantic.ts';

/** Enough for any real nesting (config, section, route, block, list); each round removes at least one value. */
const MAX_ROUNDS = 12;

/**
 * Semantic problems of the parts of `input` that `problems` (the schema's and
 * `${VAR}`'s) leave valid. Never throws; returns [] when nothing can be saved.
 */
export function salvageChecks(input: unknown, problems: readonly Problem[], schema: z.ZodType<Config>, baseDir: string): Problem[] {
  const copy = structuredClone(input);
  const removed: PathSegment[][] = [];
  const emptied = new Set<string>();
  let pending = problems;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const before = removed.length;
    for (const problem of pending) remove(copy, target(problem), removed, emptied);
    if (removed.length === before) return [];
    const result = schema.safeParse(copy);
    if (result.success) {
      resolvePaths(result.data, baseDir);
      return checkConfig(result.data, upstreamNames(input)).filter((found) => !dependsOnRemoved(found.path, removed));
    }
    pending = issueProblems(result.error.issues, copy, schema);
  }
  return [];
}

/** What to take out for a problem: the refused value, or the map that lacks a required key. */
function target(problem: Problem): readonly PathSegment[] {
  return problem.at === 'missing' ? problem.path.slice(0, -1) : problem.path;
}

/**
 * Takes `path` out of `root`. A list item is first replaced by an empty map (a
 * route with its own error keeps the indices of the routes after it, and an
 * empty route is valid); an item that is still refused then takes its whole
 * list out.
 */
function remove(root: unknown, path: readonly PathSegment[], removed: PathSegment[][], emptied: Set<string>): void {
  if (path.length === 0) return; // the document itself: nothing left to check
  const itemAt = path.findIndex((_, i) => emptied.has(key(path.slice(0, i + 1))));
  if (itemAt !== -1) return remove(root, path.slice(0, itemAt), removed, emptied);
  const parent = valueAt(root, path.slice(0, -1)).value;
  const last = path[path.length - 1];
  if (parent === null || typeof parent !== 'object' || !(last in parent)) return;
  if (Array.isArray(parent)) {
    parent[last as number] = {};
    emptied.add(key(path));
  } else {
    delete (parent as Record<PathSegment, unknown>)[last];
  }
  removed.push([...path]);
}

function key(path: readonly PathSegment[]): string {
  return JSON.stringify(path);
}

/**
 * The upstream names as written, valid or not: a route naming an upstream whose
 * own block has an error is not "unknown". Undefined when `upstreams` is not a
 * map at all (then no reference can be judged).
 */
function upstreamNames(input: unknown): string[] | undefined {
  const upstreams = (input as { upstreams?: unknown } | null)?.upstreams;
  if (upstreams === undefined) return [];
  if (upstreams === null || typeof upstreams !== 'object' || Array.isArray(upstreams)) return undefined;
  return Object.keys(upstreams);
}

/** The listen addresses are checked against each other and against `workers`. */
const LISTENER_INPUTS: PathSegment[][] = [['admin', 'listen'], ['ingress', 'listen'], ['egress', 'listen'], ['workers']];

/** Whether a finding at `path` could come from a value that was taken out (at, above or below it). */
function dependsOnRemoved(path: readonly PathSegment[], removed: readonly PathSegment[][]): boolean {
  const isListen = path.length === 2 && path[1] === 'listen';
  const inputs = isListen ? LISTENER_INPUTS : [path];
  return inputs.some((input) => removed.some((gone) => within(input, gone) || within(gone, input)));
}

function within(path: readonly PathSegment[], prefix: readonly PathSegment[]): boolean {
  return prefix.length <= path.length && prefix.every((segment, i) => segment === path[i]);
}
