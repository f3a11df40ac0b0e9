/**
 * Medians over rounds, ratios of the subject (the sidecar) to every peer, and
 * the text table printed to stdout. The same rows go to latest.json.
 */
import type { Measurement } from './load.ts';
import type { Cell } from './measure.ts';
import type { Scenario } from './scenarios.ts';

/** One peer's line in one scenario (medians over rounds). */
export interface Row {
  peer: string;
  /** req/s, or MB/s for CONNECT bulk. */
  value?: number;
  p50ms?: number;
  p99ms?: number;
  /** Latency scenarios: p99.9, and p50/p99/p99.9 minus direct's (the latency the proxy adds). */
  p999ms?: number;
  added?: { p50ms?: number; p99ms?: number; p999ms?: number };
  /** Latency scenarios: the rate asked for. */
  targetRps?: number;
  errors?: number;
  /** Median over rounds of each round's peak RSS, and the highest peak of any round. */
  rssMB?: number;
  rssMaxMB?: number;
  /** Medians of the share of one core used by the proxy, the upstream and the load generator. */
  proxyCpu?: number;
  upstreamCpu?: number;
  loadCpu?: number;
  /** Why this row's numbers measure something other than the proxy (upstream or load generator near a full core, rate not held). */
  flags?: string[];
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
  /** Latency scenarios get their own table (added over direct). */
  latency?: boolean;
  rows: Row[];
}

/** A share of one core above this, for the upstream or the load generator (or both, on their shared core), flags the row. */
export const SATURATED = 0.9;
/** A latency row whose client reached less than this share of the asked rate is flagged. */
const RATE_HELD = 0.97;

export function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function defined(values: (number | undefined)[]): number[] {
  return values.filter((v): v is number => v !== undefined && Number.isFinite(v));
}

/** Flags of one row: the upstream or the load generator near a full core in any round, or a rate not held. */
function flagsOf(samples: readonly Measurement[], targetRps: number | undefined, value: number | undefined): string[] | undefined {
  const flags: string[] = [];
  const worst = (pick: (m: Measurement) => number | undefined) => Math.max(0, ...defined(samples.map(pick)));
  const upstream = worst((m) => m.upstreamCpu);
  const load = worst((m) => m.loadCpu);
  const both = worst((m) => (m.upstreamCpu ?? 0) + (m.loadCpu ?? 0));
  if (upstream > SATURATED) flags.push(`upstream ${Math.round(upstream * 100)}%`);
  if (load > SATURATED) flags.push(`load ${Math.round(load * 100)}%`);
  // Pinned, both share CPU 1: together they can fill it while neither alone does.
  if (upstream <= SATURATED && load <= SATURATED && both > SATURATED) flags.push(`upstream+load ${Math.round(both * 100)}%`);
  if (targetRps !== undefined && value !== undefined && value < RATE_HELD * targetRps) flags.push(`rate ${Math.round(value)}/${targetRps}`);
  return flags.length ? flags : undefined;
}

function row(cell: Cell): Row {
  if (cell.skipped) return { peer: cell.peer, rounds: 0, skipped: cell.skipped };
  const values = defined(cell.samples.map((m) => m.mbps ?? m.rps));
  const value = median(values);
  const rss = median(defined(cell.samples.map((m) => m.rssBytes)));
  const targetRps = cell.samples[0]?.targetRps;
  return {
    peer: cell.peer,
    value,
    p50ms: median(defined(cell.samples.map((m) => m.p50ms))),
    p99ms: median(defined(cell.samples.map((m) => m.p99ms))),
    p999ms: median(defined(cell.samples.map((m) => m.p999ms))),
    targetRps,
    errors: cell.samples.reduce((sum, m) => sum + m.errors, 0),
    rssMB: rss === undefined ? undefined : rss / 2 ** 20,
    rssMaxMB: rss === undefined ? undefined : Math.max(...defined(cell.samples.map((m) => m.rssBytes))) / 2 ** 20,
    cpuUs: median(defined(cell.samples.map((m) => m.cpuUs))),
    proxyCpu: median(defined(cell.samples.map((m) => m.proxyCpu))),
    upstreamCpu: median(defined(cell.samples.map((m) => m.upstreamCpu))),
    loadCpu: median(defined(cell.samples.map((m) => m.loadCpu))),
    flags: flagsOf(cell.samples, targetRps, value),
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
    const latency = scenario.kind === 'latency';
    for (const r of rows) {
      if (r === subject || !subject?.value || !r.value) continue;
      // At a fixed rate throughput says nothing; latency rows compare CPU per request only.
      if (!latency) r.ratio = subject.value / r.value;
      if (subject.p99ms && r.p99ms) r.p99Ratio = subject.p99ms / r.p99ms;
      if (subject.cpuUs && r.cpuUs) r.cpuRatio = subject.cpuUs / r.cpuUs;
    }
    if (latency) {
      const direct = rows.find((r) => r.peer === 'direct' && !r.skipped);
      const minus = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : a - b);
      for (const r of rows) {
        if (r.skipped || !direct) continue;
        r.added = { p50ms: minus(r.p50ms, direct.p50ms), p99ms: minus(r.p99ms, direct.p99ms), p999ms: minus(r.p999ms, direct.p999ms) };
      }
    }
    return { name: scenario.name, title: scenario.title, unit: scenario.unit, subject: scenario.subject, latency: latency || undefined, rows };
  });
}

const fmt = {
  value: (v: number | undefined, unit: string) => (v === undefined ? '-' : unit === 'MB/s' ? v.toFixed(1) : Math.round(v).toLocaleString('en-US')),
  ms: (v: number | undefined) => (v === undefined ? '-' : v < 1 ? `${(v * 1000).toFixed(0)}us` : `${v.toFixed(2)}ms`),
  ratio: (v: number | undefined) => (v === undefined ? '' : `${v.toFixed(2)}x`),
  pct: (v: number | undefined) => (v === undefined ? '' : `${(v * 100).toFixed(0)}%`),
};

/** Columns right-aligned after the first; a row of two cells is a peer and a note. */
function render(header: string[], body: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...body.filter((b) => b.length > 2).map((b) => (b[i] ?? '').length)));
  const line = (cols: string[]) =>
    cols.length === 2
      ? `  ${cols[0].padEnd(widths[0])}  ${cols[1]}`
      : `  ${cols.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : i === cols.length - 1 ? c : c.padStart(widths[i]))).join('  ')}`.trimEnd();
  return [line(header), ...body.map(line)];
}

const core = (share: number | undefined) => (share === undefined ? '-' : `${Math.round(share * 100)}%`);
const flagText = (r: Row) => (r.flags ? `! ${r.flags.join(', ')}` : '');

/** A latency scenario: achieved rate, p50/p99/p99.9 and the same added over direct, in milliseconds with microsecond digits. */
function latencyTable(result: ScenarioResult): string[] {
  const ms = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(3));
  const header = ['peer', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', '+p50 ms', '+p99 ms', '+p99.9 ms', 'cpu/req', 'proxy', 'upstream', 'load', 'flags'];
  const body = result.rows.map((r) =>
    r.skipped
      ? [r.peer, `skipped: ${r.skipped.split('\n')[0].slice(0, 150)}`]
      : [
          r.peer,
          fmt.value(r.value, result.unit),
          ms(r.p50ms),
          ms(r.p99ms),
          ms(r.p999ms),
          r.peer === 'direct' ? '' : ms(r.added?.p50ms),
          r.peer === 'direct' ? '' : ms(r.added?.p99ms),
          r.peer === 'direct' ? '' : ms(r.added?.p999ms),
          r.cpuUs === undefined ? '-' : `${r.cpuUs.toFixed(1)}us`,
          core(r.proxyCpu),
          core(r.upstreamCpu),
          core(r.loadCpu),
          flagText(r),
        ],
  );
  return render(header, body);
}

/** The text table: one block per scenario. */
export function table(results: readonly ScenarioResult[]): string {
  const lines: string[] = [];
  for (const result of results) {
    lines.push('', `${result.name}: ${result.title}`);
    if (result.latency) {
      lines.push(...latencyTable(result));
      continue;
    }
    const cpuUnit = result.unit === 'MB/s' ? 'cpu/MB' : 'cpu/req';
    const header = ['peer', result.unit, 'p50', 'p99', 'errors', 'rss', cpuUnit, 'spread', `${result.subject}/peer`, 'p99 ratio', 'cpu ratio', 'upstream', 'load', 'flags'];
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
            core(r.upstreamCpu),
            core(r.loadCpu),
            flagText(r),
          ],
    );
    lines.push(...render(header, body));
  }
  lines.push('', `upstream, load: median share of one core used by the upstream and the load generator (both on CPU 1 when pinned); ` +
    `"!" flags a row where either, or both together, went over ${SATURATED * 100}% in a round (its ratios are compressed toward 1), or a latency client that did not hold its rate.`);
  return lines.join('\n');
}

/** RSS of the sidecar (and, for scale, of the floor) after readiness, before any load. */
export function memoryTable(start: ReadonlyMap<string, number>): string {
  if (start.size === 0) return '';
  const lines = ['', 'memory at start (RSS after every peer was ready, before load)'];
  for (const [peer, bytes] of start) lines.push(`  ${peer.padEnd(22)} ${(bytes / 2 ** 20).toFixed(1)} MB`);
  return lines.join('\n');
}
