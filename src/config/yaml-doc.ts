/**
 * The YAML side of loading: parse with positions, turn YAML's own errors into
 * Problems, and map a key path back to a line and column. Everything works on
 * the parsed Document (not on raw text), so positions stay exact even after
 * ${VAR} substitution changed scalar values.
 */
import { isAlias, isCollection, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node, Pair } from 'yaml';
import { formatPath } from './errors.ts';
import type { ConfigError, PathSegment, Problem } from './errors.ts';

/** A parsed document and the line index that turns offsets into line:col. */
export interface ParsedYaml {
  readonly doc: Document.Parsed;
  readonly lines: LineCounter;
}

/** Parses one YAML document; every syntax error, warning and duplicate key comes back as a Problem. */
export function parseYaml(text: string): { parsed: ParsedYaml; problems: Problem[] } {
  const lines = new LineCounter();
  // merge: `<<: *defaults` is common in hand-written configs; uniqueKeys: a
  // repeated key silently overriding the first is exactly the typo we must catch.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: true });
  const parsed = { doc, lines };
  const problems: Problem[] = [];
  for (const error of [...doc.errors, ...doc.warnings]) {
    if (error.code === 'DUPLICATE_KEY') {
      const found = keyAtOffset(doc.contents, error.pos[0], []);
      if (found) {
        problems.push({ path: found.path, message: `duplicate key "${found.key}"`, offset: error.pos[0] });
        continue;
      }
    }
    problems.push({ path: [], message: error.message, offset: error.pos[0] });
  }
  if (problems.length === 0) problems.push(...structureProblems(doc, doc.contents, []));
  return { parsed, problems };
}

/** What toJS() would otherwise only throw or warn about: dangling aliases and keys that are not scalars. */
function structureProblems(doc: Document, node: unknown, path: PathSegment[]): Problem[] {
  const problems: Problem[] = [];
  if (isAlias(node)) {
    if (!node.resolve(doc)) {
      problems.push({ path, message: `unknown alias *${node.source} (its anchor &${node.source} must come first)`, offset: node.range?.[0] });
    }
  } else if (isMap(node)) {
    for (const pair of node.items) {
      if (!isScalar(pair.key)) {
        const offset = isCollection(pair.key) || isAlias(pair.key) ? pair.key.range?.[0] : undefined;
        problems.push({ path, message: 'keys must be plain names, not lists, maps or aliases', offset });
        continue;
      }
      problems.push(...structureProblems(doc, pair.value, [...path, keyName(pair)]));
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, index) => problems.push(...structureProblems(doc, item, [...path, index])));
  }
  return problems;
}

function keyName(pair: Pair): string {
  return isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
}

function keyAtOffset(node: unknown, offset: number, path: PathSegment[]): { path: PathSegment[]; key: string } | undefined {
  if (isMap(node)) {
    for (const pair of node.items) {
      const keyPath = [...path, keyName(pair)];
      if (isScalar(pair.key) && pair.key.range?.[0] === offset) return { path: keyPath, key: keyName(pair) };
      const inner = keyAtOffset(pair.value, offset, keyPath);
      if (inner) return inner;
    }
  } else if (isSeq(node)) {
    for (let index = 0; index < node.items.length; index++) {
      const inner = keyAtOffset(node.items[index], offset, [...path, index]);
      if (inner) return inner;
    }
  }
  return undefined;
}

interface Walk {
  /** The deepest node reached along the path. */
  node: Node | null;
  /** The key of the pair whose value is `node`, if it came from a map. */
  key?: Node;
  /** Whether the whole path exists in the document. */
  complete: boolean;
}

function walk(parsed: ParsedYaml, path: readonly PathSegment[]): Walk {
  let node: Node | null = parsed.doc.contents;
  let key: Node | undefined;
  for (const segment of path) {
    const current: unknown = isAlias(node) ? node.resolve(parsed.doc) : node;
    let next: { node: Node | null; key?: Node } | undefined;
    if (isMap(current)) {
      const pair = current.items.find((item) => keyName(item) === String(segment));
      if (pair) next = { node: pair.value as Node | null, key: pair.key as Node };
    } else if (isSeq(current) && Number.isInteger(Number(segment))) {
      const item = current.items[Number(segment)];
      if (item !== undefined) next = { node: item as Node | null };
    }
    if (!next) return { node, key, complete: false };
    ({ node, key } = next);
  }
  return { node, key, complete: true };
}

function startOf(node: Node | null | undefined): number | undefined {
  return node?.range?.[0];
}

/**
 * The source offset a problem points at. A scalar value is shown where it is
 * written; a map or list (or an empty value) at its key, which is the line a
 * reader looks for; a missing key at the map that should contain it.
 */
function offsetOf(parsed: ParsedYaml, problem: Problem): number | undefined {
  if (problem.offset !== undefined) return problem.offset;
  const found = walk(parsed, problem.path);
  if (!found.complete || problem.at === 'missing') {
    return startOf(found.key) ?? startOf(found.node) ?? 0;
  }
  if (problem.at === 'key') return startOf(found.key) ?? startOf(found.node);
  const isWrittenScalar = isScalar(found.node) && found.node.value !== null;
  if (isWrittenScalar || !found.key) return startOf(found.node) ?? startOf(found.key);
  return startOf(found.key);
}

/** Places problems in the file: line and column from the document, path in `a.b[2].c` form. */
export function placeProblems(parsed: ParsedYaml, problems: readonly Problem[], file: string): ConfigError[] {
  return problems.map((problem) => {
    const offset = offsetOf(parsed, problem);
    const error: ConfigError = { file, path: formatPath(problem.path), message: problem.message };
    if (offset !== undefined) {
      const { line, col } = parsed.lines.linePos(offset);
      error.line = line;
      error.column = col;
    }
    return error;
  });
}
