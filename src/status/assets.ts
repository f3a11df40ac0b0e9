/**
 * The status page's stylesheet and script, served as admin paths of their
 * own so the page's Content-Security-Policy can forbid every inline script
 * and style. The script only refreshes: every 2 s it fetches the page again
 * and swaps the server-rendered <main>, so the page reads the same with
 * JavaScript off (then it is as of its loading) and on.
 */

/** For the page and both assets: nothing but this origin's own files, no framing, no forms. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export const STATUS_SCRIPT = `'use strict';
// sidecar status page: refresh the server-rendered <main> every 2 s.
(() => {
  const every = Number(document.documentElement.dataset.refreshMs) || 2000;
  const stamp = (state) => { document.documentElement.dataset.live = state; };
  async function refresh() {
    try {
      const response = await fetch(location.pathname, { cache: 'no-store', credentials: 'same-origin', headers: { accept: 'text/html' } });
      if (!response.ok) throw new Error('HTTP ' + response.status);
      const next = new DOMParser().parseFromString(await response.text(), 'text/html').querySelector('main');
      const current = document.querySelector('main');
      if (next && current) current.replaceWith(document.adoptNode(next));
      stamp('on');
    } catch {
      stamp('stale');
    }
    setTimeout(refresh, every);
  }
  stamp('on');
  setTimeout(refresh, every);
})();
`;

export const STATUS_STYLE = `:root { color-scheme: light; --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --muted: #656d76; --line: #d0d7de; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; background: #fff; }
main { max-width: 1200px; margin: 0 auto; padding: 16px 20px 32px; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 16px; border-bottom: 1px solid var(--line); padding-bottom: 8px; }
h1 { font-size: 20px; margin: 0; }
h2 { font-size: 16px; margin: 24px 0 8px; }
h3 { font-size: 14px; margin: 12px 0 4px; }
dl.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 6px 16px; margin: 12px 0; }
dl.facts div { background: var(--bg); border-radius: 6px; padding: 6px 10px; }
dt { color: var(--muted); font-size: 12px; }
dd { margin: 0; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.n, th.n { text-align: right; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
.state { font-weight: 600; padding: 1px 6px; border-radius: 10px; font-size: 12px; white-space: nowrap; }
.state.healthy, .state.closed, .state.success { color: var(--ok); background: #dafbe1; }
.state.unhealthy, .state.ejected, .state.open, .state.failure, .state.down, .state.expired { color: var(--bad); background: #ffebe9; }
.state.half_open, .state.expiring { color: var(--warn); background: #fff8c5; }
.state.none { color: var(--muted); background: var(--bg); }
.muted { color: var(--muted); fill: var(--muted); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 12px; }
figure.chart { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px; }
figcaption { font-size: 12px; color: var(--muted); }
figure.chart svg { width: 100%; height: 120px; display: block; }
svg .grid { stroke: var(--line); stroke-width: 1; vector-effect: non-scaling-stroke; }
svg .axis { font-size: 10px; fill: var(--muted); }
svg text.muted { font-size: 12px; }
path.total { stroke: #0969da; } path.s5xx { stroke: var(--bad); } path.s4xx { stroke: var(--warn); } path.p50 { stroke: #0969da; } path.p99 { stroke: #8250df; }
.key::before { content: ""; display: inline-block; width: 10px; height: 3px; margin: 0 4px 3px 8px; background: currentColor; }
.key.total { color: #0969da; } .key.s5xx { color: var(--bad); } .key.s4xx { color: var(--warn); } .key.p50 { color: #0969da; } .key.p99 { color: #8250df; }
.span { display: flex; justify-content: space-between; font-size: 11px; }
.errors li { margin: 2px 0; }
footer { margin-top: 24px; color: var(--muted); font-size: 12px; }
html[data-live="stale"] footer::after { content: " (refresh failing: the numbers may be old)"; color: var(--bad); }
`;
