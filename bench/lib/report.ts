/**
 * Medians over rounds, ratios of the subject (the sidecar) to every peer, and
 * the text table printed to stdout. The same rows go to latest.json.
 */
import type { Cell } from './measure.ts';
import type { Scenario } from './scenarios.ts';

/** One peer's line in one scenario (medians over rounds). */
export interface Row {
  peer: string;
  /** req/s, or MB/s for CONNECT bulk. */
  value?: number;
  p50ms?: number;
  p99ms?: number;
  errors?: number;
  rssMB?: number;
  /** CPU per request (per MB for CONNECT bulk), microseconds. */
  cpuUs?: number;
  rounds: number;
  /** (max - min) / median of value over rounds. */
  spread?: number;
  /** subject value / this peer's value (higher is better for the subject). */
  ratio?: number;
  /** subject p99 / this peer's p99 (lower is better for the subject). */
  p99Ratio?: number;
  /** subject CPU per request / this peer's (lower is better for the subject). */
  cpuRatio?: number;
  skipped?: string;
  failures?: string[];
}

export interface ScenarioResult {
  name: string;
  title: string;
  unit: string;
  subject: string;
  rows: Row[];
}

export function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function defined(values: (number | undefined)[]): number[] {
  return values.filter((v): v is number => v !== undefined && Number.isFinite(v));
}

function row(cell: Cell): Row {
  if (cell.skipped) return { peer: cell.peer, rounds: 0, skipped: cell.skipped };
  const values = defined(cell.samples.map((m) => m.mbps ?? m.rps));
  const value = median(values);
  const rss = median(defined(cell.samples.map((m) => m.rssBytes)));
  return {
    peer: cell.peer,
    value,
    p50ms: median(defined(cell.samples.map((m) => m.p50ms))),
    p99ms: median(defined(cell.samples.map((m) => m.p99ms))),
    errors: cell.samples.reduce((sum, m) => sum + m.errors, 0),
    rssMB: rss === undefined ? undefined : rss / 2 ** 20,
    cpuUs: median(defined(cell.samples.map((m) => m.cpuUs))),
    rounds: cell.samples.length,
    spread: value && values.length > 1 ? (Math.max(...values) - Math.min(...values)) / value : undefined,
    failures: cell.failures.length ? cell.failures : undefined,
  };
}

/** Builds the per-scenario rows with ratios to the subject. */
export function summarize(scenarios: readonly Scenario[], cells: ReadonlyMap<string, Cell>): ScenarioResult[] {
  return scenarios.map((scenario) => {
    const rows = scenario.peers.map((peer) => row(cells.get(`${scenario.name}|${peer}`) as Cell));
    const subject = rows.find((r) => r.peer === scenario.subject);
    for (const r of rows) {
      if (r === subject || !subject?.value || !r.value) continue;
      r.ratio = subject.value / r.value;
      if (subject.p99ms && r.p99ms) r.p99Ratio = subject.p99ms / r.p99ms;
      if (subject.cpuUs && r.cpuUs) r.cpuRatio = subject.cpuUs / r.cpuUs;
    }
    return { name: scenario.name, title: scenario.title, unit: scenario.unit, subject: scenario.subject, rows };
  });
}

const fmt = {
  value: (v: number | undefined, unit: string) => (v === undefined ? '-' : unit === 'MB/s' ? v.toFixed(1) : Math.round(v).toLocaleString('en-US')),
  ms: (v: number | undefined) => (v === undefined ? '-' : v < 1 ? `${(v * 1000).toFixed(0)}us` : `${v.toFixed(2)}ms`),
  ratio: (v: number | undefined) => (v === undefined ? '' : `${v.toFixed(2)}x`),
  pct: (v: number | undefined) => (v === undefined ? '' : `${(v * 100).toFixed(0)}%`),
};

/** The text table: one block per scenario. */
export function table(results: readonly ScenarioResult[]): string {
  const lines: string[] = [];
  for (const result of results) {
    lines.push('', `${result.name}: ${result.title}`);
    const cpuUnit = result.unit === 'MB/s' ? 'cpu/MB' : 'cpu/req';
    const header = ['peer', result.unit, 'p50', 'p99', 'errors', 'rss', cpuUnit, 'spread', `${result.subject}/peer`, 'p99 ratio', 'cpu ratio'];
    const body = result.rows.map((r) =>
      r.skipped
        ? [r.peer, `skipped: ${r.skipped.split('\n')[0].slice(0, 150)}`]
        : [
            r.peer,
            fmt.value(r.value, result.unit),
            fmt.ms(r.p50ms),
            fmt.ms(r.p99ms),
            String(r.errors ?? 0),
            r.rssMB === undefined ? '-' : `${r.rssMB.toFixed(0)}MB`,
            r.cpuUs === undefined ? '-' : `${r.cpuUs.toFixed(1)}us`,
            fmt.pct(r.spread),
            r.peer === result.subject ? '(subject)' : fmt.ratio(r.ratio),
            fmt.ratio(r.p99Ratio),
            fmt.ratio(r.cpuRatio),
          ],
    );
    const widths = header.map((h, i) => Math.max(h.length, ...body.filter((b) => b.length > 2).map((b) => (b[i] ?? '').length)));
    const render = (cols: string[]) =>
      cols.length === 2
        ? `  ${cols[0].padEnd(widths[0])}  ${cols[1]}`
        : `  ${cols.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')}`.trimEnd();
    lines.push(render(header), ...body.map(render));
  }
  return lines.join('\n');
}
