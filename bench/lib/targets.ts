/**
 * The targets of issue 22 (restating issue 7's), checked against one run. A
 * target whose inputs were skipped is "n/a" with the reason, never a silent
 * pass; one whose rows were flagged (upstream or load generator near a full
 * core, a latency client short of its rate) says so in its note.
 */
import type { Row, ScenarioResult } from './report.ts';

export interface TargetCheck {
  target: string;
  want: string;
  got?: string;
  status: 'pass' | 'FAIL' | 'n/a';
  note?: string;
}

interface RatioTarget {
  scenario: string;
  peer: string;
  bound: number;
}

/** Throughput of the subject / the peer's, same run: at least `bound`. */
const RATIO_TARGETS: readonly RatioTarget[] = [
  { scenario: 'ingress-small-c50', peer: 'fastify-http-proxy', bound: 1.5 },
  { scenario: 'ingress-small-c50', peer: 'http-proxy', bound: 2.0 },
  { scenario: 'ingress-small-c50', peer: 'undici-ceiling', bound: 1.0 },
  { scenario: 'ingress-small-c50', peer: 'undici-floor', bound: 0.85 },
  { scenario: 'egress-absolute-c50', peer: 'squid', bound: 1.0 },
  { scenario: 'egress-connect-bulk', peer: 'squid', bound: 0.8 },
  { scenario: 'static-1k-c50', peer: 'nginx', bound: 0.4 },
  // Access log on / off >= 0.9 means logging costs at most 10% throughput.
  { scenario: 'accesslog-c50', peer: 'sidecar-nolog', bound: 0.9 },
];

/** The latency scenarios whose added latency is held to the targets (hey's bursts, and evenly spaced requests). */
const LATENCY_SCENARIOS = ['latency-2k', 'latency-2k-paced'];
/** Sidecar added p50 at most the floor's + this; added p99 at most max(the floor's, P99_FLOOR_MS); the floor's added p50 under FLOOR_P50_MS. */
const P50_OVER_FLOOR_MS = 0.2;
const P99_FLOOR_MS = 2;
const FLOOR_P50_MS = 0.3;

const RSS_START_MB = 70;
const RSS_PEAK_MB = 100;

function find(results: readonly ScenarioResult[], scenario: string, peer: string): { row?: Row; subject?: Row; why?: string } {
  const result = results.find((r) => r.name === scenario);
  if (!result) return { why: 'scenario not run' };
  const row = result.rows.find((r) => r.peer === peer);
  const subject = result.rows.find((r) => r.peer === result.subject);
  if (!subject || subject.skipped) return { why: `${result.subject} skipped` };
  if (!row || row.skipped) return { why: `${peer} skipped` };
  return { row, subject };
}

/** The flags of the rows a target reads, as one note. */
function flagged(rows: readonly (Row | undefined)[]): string | undefined {
  const notes = rows.filter((r): r is Row => r?.flags !== undefined).map((r) => `${r.peer}: ${r.flags?.join(', ')}`);
  return notes.length ? `flagged, ${notes.join('; ')}` : undefined;
}

/**
 * What the floor (bare undici dispatch, no features) reaches against the same
 * peer in the same run: a throughput target above it is out of reach for any
 * proxy built on node:http and undici.
 */
function floorNote(results: readonly ScenarioResult[], t: RatioTarget): string | undefined {
  if (t.peer === 'undici-floor') return undefined;
  const peer = find(results, t.scenario, t.peer).row;
  const floor = find(results, t.scenario, 'undici-floor').row;
  if (peer?.ratio === undefined || floor?.ratio === undefined) return undefined;
  // ratio = sidecar / peer, so floor / peer = (sidecar / peer) / (sidecar / floor).
  return `undici-floor / ${t.peer}: ${(peer.ratio / floor.ratio).toFixed(2)}`;
}

const notes = (...parts: (string | undefined)[]) => parts.filter(Boolean).join('; ') || undefined;
const ms = (v: number) => `${v.toFixed(3)}ms`;

function ratioChecks(results: readonly ScenarioResult[]): TargetCheck[] {
  return RATIO_TARGETS.map((t) => {
    const result = results.find((r) => r.name === t.scenario);
    const label = `${t.scenario}: ${result?.subject ?? 'sidecar'} / ${t.peer}`;
    const want = `>= ${t.bound}`;
    const { row, subject, why } = find(results, t.scenario, t.peer);
    if (row?.ratio === undefined) return { target: label, want, status: 'n/a', note: why ?? 'no value' };
    return { target: label, want, got: row.ratio.toFixed(2), status: row.ratio >= t.bound ? 'pass' : 'FAIL', note: notes(floorNote(results, t), flagged([subject, row])) };
  });
}

function latencyChecks(results: readonly ScenarioResult[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const name of LATENCY_SCENARIOS) {
    const { row: floor, subject, why } = find(results, name, 'undici-floor');
    const sidecar = find(results, name, 'sidecar').row;
    const labels = [`${name}: sidecar added p50`, `${name}: sidecar added p99`, `${name}: undici-floor added p50`];
    const f50 = floor?.added?.p50ms;
    const f99 = floor?.added?.p99ms;
    const s50 = sidecar?.added?.p50ms;
    const s99 = sidecar?.added?.p99ms;
    if (f50 === undefined || f99 === undefined || s50 === undefined || s99 === undefined) {
      const reason = why ?? (sidecar ? 'direct skipped' : 'sidecar skipped');
      if (why !== 'scenario not run') for (const target of labels) checks.push({ target, want: '-', status: 'n/a', note: reason });
      continue;
    }
    const note = flagged([subject, floor, find(results, name, 'direct').row]);
    const p50Bound = f50 + P50_OVER_FLOOR_MS;
    const p99Bound = Math.max(f99, P99_FLOOR_MS);
    checks.push(
      { target: labels[0], want: `<= ${ms(p50Bound)}`, got: ms(s50), status: s50 <= p50Bound ? 'pass' : 'FAIL', note: notes(`floor + ${P50_OVER_FLOOR_MS} ms`, note) },
      { target: labels[1], want: `<= ${ms(p99Bound)}`, got: ms(s99), status: s99 <= p99Bound ? 'pass' : 'FAIL', note: notes(`max(floor ${ms(f99)}, ${P99_FLOOR_MS} ms)`, note) },
      { target: labels[2], want: `< ${ms(FLOOR_P50_MS)}`, got: ms(f50), status: f50 < FLOOR_P50_MS ? 'pass' : 'FAIL', note },
    );
  }
  return checks;
}

function rssChecks(results: readonly ScenarioResult[], startRss: ReadonlyMap<string, number>): TargetCheck[] {
  const mb = (bound: number, got: number | undefined, target: string, why: string): TargetCheck =>
    got === undefined
      ? { target, want: `<= ${bound}`, status: 'n/a', note: why }
      : { target, want: `<= ${bound}`, got: got.toFixed(0), status: got <= bound ? 'pass' : 'FAIL' };
  const start = startRss.get('sidecar');
  const c50 = find(results, 'ingress-small-c50', 'sidecar');
  const uploads = find(results, 'uploads-1mib-c10', 'sidecar-upload');
  return [
    mb(RSS_START_MB, start === undefined ? undefined : start / 2 ** 20, 'sidecar RSS at start (MB)', 'sidecar not started'),
    mb(RSS_PEAK_MB, c50.row?.rssMaxMB, 'ingress-small-c50: sidecar peak RSS (MB)', c50.why ?? 'not measured'),
    mb(RSS_PEAK_MB, uploads.row?.rssMaxMB, 'uploads-1mib-c10: sidecar-upload peak RSS (MB)', uploads.why ?? 'not measured'),
  ];
}

/** Every target of issue 22 against one run; `startRss` holds each peer's RSS before load. */
export function checkTargets(results: readonly ScenarioResult[], startRss: ReadonlyMap<string, number> = new Map()): TargetCheck[] {
  return [...ratioChecks(results), ...latencyChecks(results), ...rssChecks(results, startRss)];
}

/**
 * The closing note on tracing: throughput and CPU per request of the sampled
 * sidecars as a share of the same config with tracing off, in the same run
 * (the rows' ratios are off / sampled, so this is their inverse).
 */
export function tracingNote(results: readonly ScenarioResult[]): string | undefined {
  const result = results.find((r) => r.name === 'tracing-c50');
  if (!result) return undefined;
  const parts = ['sidecar-trace-1pct', 'sidecar-trace-100pct'].map((peer) => {
    const row = result.rows.find((r) => r.peer === peer);
    if (!row || row.skipped || !row.ratio || !row.cpuRatio) return `${peer}: n/a${row?.skipped ? ` (${row.skipped.split('\n')[0]})` : ''}`;
    return `${peer.replace('sidecar-trace-', '')} sampled: throughput ${(1 / row.ratio).toFixed(2)}x, CPU per request ${(1 / row.cpuRatio).toFixed(2)}x`;
  });
  return `\ntracing cost (same run, against tracing off): ${parts.join('; ')}`;
}

export function targetsTable(checks: readonly TargetCheck[]): string {
  const width = Math.max(...checks.map((c) => c.target.length));
  const wantWidth = Math.max(...checks.map((c) => c.want.length));
  const gotWidth = Math.max(6, ...checks.map((c) => (c.got ?? '-').length));
  const status = (s: TargetCheck['status']) => (s === 'pass' ? 'PASS' : s);
  return [
    '',
    'targets (issue 22)',
    ...checks.map((c) => `  ${c.target.padEnd(width)}  ${c.want.padEnd(wantWidth)}  ${(c.got ?? '-').padStart(gotWidth)}  ${status(c.status)}${c.note ? ` (${c.note})` : ''}`),
  ].join('\n');
}
