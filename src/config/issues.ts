/**
 * zod issues -> Problems a person can act on. zod's own messages speak about
 * JS ("expected record, received undefined"); these speak about the YAML the
 * user wrote ("required key is missing", "unknown key "upstrem" (did you mean
 * "upstream"?)"), and every issue keeps its exact key path.
 */
import type { z } from 'zod';
import type { PathSegment, Problem } from './errors.ts';

type Issue = z.core.$ZodIssue;

/** Turns every zod issue (unions and unknown keys unfolded) into Problems. */
export function issueProblems(issues: readonly Issue[], input: unknown, schema: z.ZodType): Problem[] {
  return issues.flatMap((issue) => fromIssue(issue, [], input, schema));
}

function fromIssue(issue: Issue, prefix: readonly PathSegment[], input: unknown, schema: z.ZodType): Problem[] {
  const path = [...prefix, ...(issue.path as PathSegment[])];
  const value = valueAt(input, path);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = knownKeys(schema, path);
      return issue.keys.map((key) => ({ path: [...path, key], message: unknownKey(key, known), at: 'key' as const }));
    }
    case 'invalid_key':
      return [{ path, message: issue.issues[0]?.message ?? 'invalid key', at: 'key' }];
    case 'invalid_union':
      return fromUnion(issue, path, input, schema);
    case 'invalid_type':
      if (value.missing) return [{ path, message: 'required key is missing', at: 'missing' }];
      if (issue.expected === 'int' && typeof value.value === 'number') return [{ path, message: `must be a whole number, got ${value.value}` }];
      return [{ path, message: `expected ${typeName(issue.expected)}, got ${describe(value.value)}` }];
    case 'too_small':
    case 'too_big':
      return [{ path, message: boundMessage(issue) }];
    case 'invalid_value':
      return [{ path, message: `must be ${oneOf(issue.values)}, got ${describe(value.value)}` }];
    default:
      return [{ path, message: issue.message.replace(/^Invalid (input|string|option): /, '') }];
  }
}

/**
 * A union failed in every branch. Prefer the branch that got past the type
 * check (its error is about the value); when all branches refused the type,
 * name the types the union accepts.
 */
function fromUnion(issue: Extract<Issue, { code: 'invalid_union' }>, path: PathSegment[], input: unknown, schema: z.ZodType): Problem[] {
  const value = valueAt(input, path).value;
  const typeOnly = (branch: readonly Issue[]): boolean =>
    branch.length === 1 &&
    branch[0].path.length === 0 &&
    ((branch[0].code === 'invalid_type' && !(branch[0].expected === 'int' && typeof value === 'number')) ||
      (branch[0].code === 'invalid_value' && !branch[0].values.some((v) => typeof v === typeof value)));
  const valueBranch = issue.errors.find((branch) => !typeOnly(branch));
  if (valueBranch) return valueBranch.flatMap((inner) => fromIssue(inner, path, input, schema));
  const types = issue.errors.flatMap((branch) => {
    const first = branch[0];
    if (first?.code === 'invalid_type') return [typeName(first.expected)];
    if (first?.code === 'invalid_value') return [oneOf(first.values)];
    return [];
  });
  const unique = [...new Set(types)];
  if (unique.length === 0) return [{ path, message: `not an accepted value: ${describe(value)}` }];
  return [{ path, message: `expected ${unique.join(' or ')}, got ${describe(value)}` }];
}

function boundMessage(issue: Extract<Issue, { code: 'too_small' | 'too_big' }>): string {
  const small = issue.code === 'too_small';
  const limit = Number(small ? (issue as { minimum: number | bigint }).minimum : (issue as { maximum: number | bigint }).maximum);
  const inclusive = issue.inclusive !== false;
  if (issue.origin === 'array' || issue.origin === 'set') {
    const items = `${limit} item${limit === 1 ? '' : 's'}`;
    if (small && limit === 1) return 'must not be empty';
    return small ? `must have at least ${items}` : `must have at most ${items}`;
  }
  if (issue.origin === 'string') {
    if (small && limit === 1) return 'must not be empty';
    return small ? `must be at least ${limit} characters long` : `must be at most ${limit} characters long`;
  }
  const op = small ? (inclusive ? '>=' : '>') : inclusive ? '<=' : '<';
  return `must be ${op} ${limit}`;
}

const TYPE_NAMES: Record<string, string> = {
  array: 'a list',
  object: 'a map',
  record: 'a map',
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
};

function typeName(expected: string): string {
  return TYPE_NAMES[expected] ?? expected;
}

function oneOf(values: readonly unknown[]): string {
  const shown = values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v)));
  return shown.length === 1 ? shown[0] : `one of: ${shown.join(', ')}`;
}

/** A YAML-flavoured description of a value, for "got ..." */
function describe(value: unknown): string {
  if (value === null || value === undefined) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

/** The value at `path` in plain data (the YAML as JS), and whether the path exists at all. */
export function valueAt(input: unknown, path: readonly PathSegment[]): { value: unknown; missing: boolean } {
  let value = input;
  for (const segment of path) {
    if (value === null || typeof value !== 'object' || !(segment in value)) return { value: undefined, missing: true };
    value = (value as Record<PathSegment, unknown>)[segment];
  }
  return { value, missing: false };
}

function unknownKey(key: string, known: readonly string[]): string {
  const close = known
    .map((candidate) => ({ candidate, distance: editDistance(key.toLowerCase(), candidate.toLowerCase()) }))
    .filter(({ candidate, distance }) => distance <= Math.max(1, Math.floor(candidate.length / 3)))
    .sort((a, b) => a.distance - b.distance)[0];
  if (close) return `unknown key "${key}" (did you mean "${close.candidate}"?)`;
  return known.length > 0 ? `unknown key "${key}" (allowed: ${known.join(', ')})` : `unknown key "${key}"`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}

/** The def fields we read while walking the schema; zod's own def types are a wide union. */
interface LooseDef {
  type: string;
  shape?: Record<string, Walkable>;
  innerType?: Walkable;
  in?: Walkable;
  element?: Walkable;
  valueType?: Walkable;
  options?: Walkable[];
}
interface Walkable {
  _zod: { def: unknown };
}

const def = (schema: Walkable): LooseDef => schema._zod.def as LooseDef;

/** Peels optional/default/pipe wrappers down to the schema that holds the structure. */
function unwrap(schema: Walkable): Walkable {
  let current = schema;
  for (;;) {
    const d = def(current);
    const inner = d.type === 'pipe' ? d.in : d.innerType;
    if (!inner) return current;
    current = inner;
  }
}

/** The keys an object at `path` accepts, for "did you mean" (empty when the walk gets lost). */
function knownKeys(schema: z.ZodType, path: readonly PathSegment[]): string[] {
  let nodes: Walkable[] = [schema];
  for (const segment of path) {
    nodes = nodes.flatMap((node) => children(unwrap(node), segment));
  }
  return [...new Set(nodes.flatMap((node) => objectKeys(unwrap(node))))];
}

function children(node: Walkable, segment: PathSegment): Walkable[] {
  const d = def(node);
  if (d.type === 'object') return d.shape && segment in d.shape ? [d.shape[segment]] : [];
  if (d.type === 'array' && d.element) return [d.element];
  if (d.type === 'record' && d.valueType) return [d.valueType];
  if (d.type === 'union' && d.options) return d.options.flatMap((option) => children(unwrap(option), segment));
  return [];
}

function objectKeys(node: Walkable): string[] {
  const d = def(node);
  if (d.type === 'object' && d.shape) return Object.keys(d.shape);
  if (d.type === 'union' && d.options) return d.options.flatMap((option) => objectKeys(unwrap(option)));
  return [];
}
