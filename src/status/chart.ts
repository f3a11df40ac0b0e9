/**
 * Small line charts as inline SVG, drawn on the server: no chart library, no
 * script, nothing a strict Content-Security-Policy would block (colours are
 * presentation attributes and classes, never `style=`).
 */

export interface Line {
  /** A class of the stylesheet (status.css) that colours it. */
  readonly className: string;
  readonly label: string;
  readonly values: ReadonlyArray<number | null>;
}

const WIDTH = 600;
const HEIGHT = 120;
const PAD_TOP = 14;

/** One chart of `lines` over the same x positions (oldest first); the y axis starts at 0 and ends at the largest value. */
export function lineChart(title: string, unit: string, lines: readonly Line[], span: string): string {
  const count = Math.max(0, ...lines.map((line) => line.values.length));
  const max = Math.max(0, ...lines.flatMap((line) => line.values.filter((value): value is number => value !== null)));
  const top = max > 0 ? niceCeiling(max) : 1;
  const x = (index: number) => (count <= 1 ? WIDTH : (index / (count - 1)) * WIDTH);
  const y = (value: number) => HEIGHT - (value / top) * (HEIGHT - PAD_TOP);
  const paths = lines.map((line) => {
    let d = '';
    let open = false;
    line.values.forEach((value, index) => {
      if (value === null) {
        open = false;
        return;
      }
      d += `${open ? 'L' : 'M'}${x(index).toFixed(1)},${y(value).toFixed(1)}`;
      open = true;
    });
    return d ? `<path class="${line.className}" d="${d}" fill="none" stroke-width="1.5" vector-effect="non-scaling-stroke"/>` : '';
  });
  const legend = lines.map((line) => `<span class="key ${line.className}">${escapeHtml(line.label)}</span>`).join(' ');
  const empty = count < 2 ? `<text x="${WIDTH / 2}" y="${HEIGHT / 2}" text-anchor="middle" class="muted">collecting…</text>` : '';
  return (
    `<figure class="chart"><figcaption>${escapeHtml(title)} <span class="legend">${legend}</span></figcaption>` +
    `<svg viewBox="0 0 ${WIDTH} ${HEIGHT}" preserveAspectRatio="none" role="img" aria-label="${escapeHtml(title)}, last ${escapeHtml(span)}">` +
    `<line x1="0" y1="${PAD_TOP}" x2="${WIDTH}" y2="${PAD_TOP}" class="grid"/><line x1="0" y1="${HEIGHT}" x2="${WIDTH}" y2="${HEIGHT}" class="grid"/>` +
    `<text x="4" y="11" class="axis">${escapeHtml(formatNumber(top))} ${escapeHtml(unit)}</text>${paths.join('')}${empty}</svg>` +
    `<div class="span muted"><span>-${escapeHtml(span)}</span><span>now</span></div></figure>`
  );
}

/** 1, 2 or 5 times a power of ten, at least `value`. */
function niceCeiling(value: number): number {
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

export function formatNumber(value: number): string {
  if (value >= 100 || Number.isInteger(value)) return String(Math.round(value));
  return value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => HTML_ESCAPES[char]);
}
