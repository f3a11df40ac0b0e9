/**
 * A hand-written SVG bar chart of the subject's ratios to each peer, one group
 * per scenario, with the 1.0 line marked. No chart library: plain markup.
 */
import type { ScenarioResult } from './report.ts';

const esc = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const LABEL_W = 250;
const BAR_W = 560;
const VALUE_W = 90;
const BAR_H = 16;
const GAP = 5;
const HEAD_H = 26;
const TOP = 56;

export function chart(results: readonly ScenarioResult[], subtitle: string): string {
  const ratios = results.flatMap((r) => r.rows.map((row) => row.ratio ?? 0));
  const max = Math.max(1.25, ...ratios) * 1.05;
  const x = (v: number) => LABEL_W + (v / max) * BAR_W;
  const parts: string[] = [];
  let y = TOP;
  for (const result of results) {
    parts.push(`<text x="8" y="${y + 17}" class="head">${esc(result.name)} <tspan class="dim">(${esc(result.subject)} / peer, ${esc(result.unit)})</tspan></text>`);
    y += HEAD_H;
    const subject = result.rows.find((r) => r.peer === result.subject);
    for (const row of result.rows) {
      if (row.peer === result.subject) continue;
      parts.push(`<text x="${LABEL_W - 8}" y="${y + 12}" class="label" text-anchor="end">${esc(row.peer)}</text>`);
      if (row.ratio !== undefined) {
        const cls = row.ratio >= 1 ? 'win' : 'lose';
        parts.push(`<rect x="${LABEL_W}" y="${y}" width="${(x(row.ratio) - LABEL_W).toFixed(1)}" height="${BAR_H}" class="${cls}"/>`);
        parts.push(`<text x="${(x(row.ratio) + 6).toFixed(1)}" y="${y + 12}" class="value">${row.ratio.toFixed(2)}x</text>`);
      } else {
        const why = row.skipped
          ? `skipped: ${row.skipped.split('\n')[0]}`
          : `${result.subject} skipped: ${(subject?.skipped ?? 'not measured').split('\n')[0]}`;
        parts.push(`<text x="${LABEL_W + 6}" y="${y + 12}" class="dim">${esc(why.slice(0, 90))}</text>`);
      }
      y += BAR_H + GAP;
    }
  }
  const height = y + 30;
  const width = LABEL_W + BAR_W + VALUE_W;
  const ticks: string[] = [];
  const step = max > 4 ? 1 : 0.5;
  for (let v = 0; v <= max; v += step) {
    ticks.push(`<line x1="${x(v)}" y1="${TOP - 6}" x2="${x(v)}" y2="${y}" class="${v === 1 ? 'one' : 'grid'}"/>`);
    ticks.push(`<text x="${x(v)}" y="${y + 16}" class="dim" text-anchor="middle">${v.toFixed(1)}</text>`);
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">
<style>
  .head { font-weight: 600; font-size: 13px; fill: #222; }
  .label { fill: #333; }
  .value { fill: #222; }
  .dim { fill: #888; font-weight: normal; }
  .win { fill: #2e8b57; }
  .lose { fill: #d2691e; }
  .grid { stroke: #e4e4e4; }
  .one { stroke: #444; stroke-dasharray: 4 3; }
</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="8" y="22" font-size="16" font-weight="600">sidecar throughput relative to each peer (higher is better; 1.0 = equal)</text>
<text x="8" y="40" class="dim">${esc(subtitle)}</text>
${ticks.join('\n')}
${parts.join('\n')}
</svg>
`;
}
