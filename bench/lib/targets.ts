/**
 * The targets of issue 7, checked against one run's ratios. A target whose
 * inputs were skipped is "n/a" with the reason, never a silent pass.
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
  metric: 'ratio' | 'p99Ratio';
  op: '>=' | '<=';
  bound: number;
}

const RATIO_TARGETS: readonly RatioTarget[] = [
  { scenario: 'ingress-small-c50', peer: 'fastify-http-proxy', metric: 'ratio', op: '>=', bound: 1.8 },
  { scenario: 'ingress-small-c50', peer: 'http-proxy', metric: 'ratio', op: '>=', bound: 2.5 },
  { scenario: 'ingress-small-c50', peer: 'undici-ceiling', metric: 'ratio', op: '>=', bound: 0.9 },
  { scenario: 'ingress-small-c50', peer: 'undici-ceiling', metric: 'p99Ratio', op: '<=', bound: 1.2 },
  { scenario: 'ingress-small-c50', peer: 'nginx', metric: 'ratio', op: '>=', bound: 0.33 },
  { scenario: 'egress-absolute-c50', peer: 'squid', metric: 'ratio', op: '>=', bound: 1.0 },
  { scenario: 'egress-connect-bulk', peer: 'squid', metric: 'ratio', op: '>=', bound: 0.8 },
  { scenario: 'static-1k-c50', peer: 'nginx', metric: 'ratio', op: '>=', bound: 0.4 },
  { scenario: 'static-1m-c10', peer: 'nginx', metric: 'ratio', op: '>=', bound: 0.4 },
  // Access log on / off >= 0.9 means logging costs at most 10% throughput.
  { scenario: 'accesslog-c50', peer: 'sidecar-nolog', metric: 'ratio', op: '>=', bound: 0.9 },
];

const RSS_LIMIT_MB = 150;

function find(results: readonly ScenarioResult[], scenario: string, peer: string): { row?: Row; why?: string } {
  const result = results.find((r) => r.name === scenario);
  if (!result) return { why: 'scenario not run' };
  const row = result.rows.find((r) => r.peer === peer);
  const subject = result.rows.find((r) => r.peer === result.subject);
  if (subject?.skipped) return { why: `${result.subject} skipped` };
  if (!row || row.skipped) return { why: `${peer} skipped` };
  return { row };
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

export function checkTargets(results: readonly ScenarioResult[]): TargetCheck[] {
  const checks: TargetCheck[] = RATIO_TARGETS.map((t) => {
    const label = `${t.scenario}: sidecar${t.metric === 'p99Ratio' ? ' p99' : ''} / ${t.peer}`;
    const want = `${t.op} ${t.bound}`;
    const { row, why } = find(results, t.scenario, t.peer);
    const got = row?.[t.metric];
    if (got === undefined) return { target: label, want, status: 'n/a', note: why ?? 'no value' };
    const ok = t.op === '>=' ? got >= t.bound : got <= t.bound;
    return { target: label, want, got: got.toFixed(2), status: ok ? 'pass' : 'FAIL', note: t.metric === 'ratio' ? floorNote(results, t) : undefined };
  });
  const rss = results.flatMap((r) => r.rows.filter((row) => row.peer === 'sidecar' && row.rssMB !== undefined).map((row) => row.rssMB as number));
  const peak = rss.length ? Math.max(...rss) : undefined;
  checks.push(
    peak === undefined
      ? { target: 'sidecar RSS under load (MB, peak of medians)', want: `<= ${RSS_LIMIT_MB}`, status: 'n/a', note: 'sidecar not measured' }
      : { target: 'sidecar RSS under load (MB, peak of medians)', want: `<= ${RSS_LIMIT_MB}`, got: peak.toFixed(0), status: peak <= RSS_LIMIT_MB ? 'pass' : 'FAIL' },
  );
  return checks;
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
  return ['', 'targets (issue 7)', ...checks.map((c) => `  ${c.target.padEnd(width)}  ${c.want.padEnd(7)}  ${(c.got ?? '-').padStart(6)}  ${c.status}${c.note ? ` (${c.note})` : ''}`)].join('\n');
}
