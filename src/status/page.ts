/**
 * The status page (admin `GET /`): StatusJson rendered on the server as
 * tables and inline SVG charts, readable as it is with JavaScript off;
 * status.js only fetches it again every 2 s. Every value is escaped. Links
 * are relative, so the page also works behind a path prefix (`kubectl proxy`,
 * a reverse proxy's sub-path).
 */
import type { CertificateJson, EndpointJson, ListenerJson, RatesJson, StatusJson, UpstreamJson } from './board.ts';
import { escapeHtml as h, formatNumber, lineChart } from './chart.ts';

export function renderStatusPage(status: StatusJson): string {
  const seconds = Math.round(status.intervalSeconds * (status.listeners[0]?.history.at.length ?? 0));
  const span = seconds < 120 ? `${seconds} s` : `${Math.round(seconds / 60)} min`;
  return `<!doctype html>
<html lang="en" data-refresh-ms="${status.intervalSeconds * 1000}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sidecar status</title>
<link rel="stylesheet" href="status.css">
<script src="status.js" defer></script>
</head>
<body>
<main>
<header><h1>sidecar</h1><span class="muted">v${h(status.version)} · status as of <time datetime="${h(status.now)}">${h(status.now.replace('T', ' ').replace(/\.\d+Z$/, 'Z'))}</time></span></header>
${facts(status)}
<section><h2>Listeners</h2>${status.listeners.length === 0 ? '<p class="muted">no ingress or egress configured</p>' : status.listeners.map((listener) => listenerSection(listener, span)).join('\n')}</section>
<section><h2>Routes</h2>${routesTable(status)}</section>
<section><h2>Upstreams</h2>${upstreamsTable(status.upstreams)}</section>
<section><h2>Certificates</h2>${certificatesTable(status.certificates)}</section>
<section><h2>Recent errors</h2>${errorsTable(status)}</section>
<footer>Numbers are those of <a href="metrics">/metrics</a>${status.workers > 1 ? `, summed over ${status.workers} workers` : ''}; rates per second over the last ${status.intervalSeconds} s or so; data as JSON at <a href="status.json">/status.json</a>. With JavaScript on, this page refreshes every ${status.intervalSeconds} s.</footer>
</main>
</body>
</html>
`;
}

function facts(status: StatusJson): string {
  const item = (label: string, value: string) => `<div><dt>${h(label)}</dt><dd>${value}</dd></div>`;
  const reload = status.lastReload;
  const items = [
    item('uptime', h(duration(status.uptimeSeconds))),
    item('workers', String(status.workers)),
    item('sidecar memory (RSS)', h(bytes(status.sidecar.rssBytes))),
    item('sidecar CPU', h(percent(status.sidecar.cpuPercent))),
    status.app
      ? item('app', `<span class="state ${status.app.up ? 'healthy' : 'down'}">${status.app.up ? 'up' : 'down'}</span> ${h(bytes(status.app.rssBytes))} · ${h(percent(status.app.cpuPercent))} CPU`)
      : item('app', '<span class="muted">not supervised</span>'),
    item('config hash', `<code>${h(status.config.hash.slice(0, 12))}</code>`),
    item('config file', `<code>${h(status.config.source)}</code>`),
    item('loaded', clock(status.config.loadedAt)),
    item(
      'last reload',
      reload
        ? `<span class="state ${reload.result}">${reload.result}</span> ${clock(reload.at)}${reload.errors?.length ? `<ul class="errors">${reload.errors.map((error) => `<li><code>${h(error)}</code></li>`).join('')}</ul>` : ''}`
        : '<span class="muted">none since start</span>',
    ),
  ];
  return `<dl class="facts">${items.join('')}</dl>`;
}

function listenerSection(listener: ListenerJson, span: string): string {
  const history = listener.history;
  const rate = listener.rate;
  return `<h3>${h(listener.name)} <span class="muted">${h(listener.listen)}</span></h3>
<table><thead><tr><th class="n">requests/s</th><th class="n">in flight</th><th class="n">2xx/s</th><th class="n">4xx/s</th><th class="n">5xx/s</th><th class="n">p50</th><th class="n">p99</th><th class="n">requests</th><th class="n">5xx</th></tr></thead>
<tbody><tr data-listener="${h(listener.name)}"><td class="n">${num(rate.requests)}</td><td class="n">${listener.inFlight}</td><td class="n">${num(rate['2xx'])}</td><td class="n">${num(rate['4xx'])}</td><td class="n">${num(rate['5xx'])}</td><td class="n">${ms(rate.p50Ms)}</td><td class="n">${ms(rate.p99Ms)}</td><td class="n">${listener.total.requests}</td><td class="n">${listener.total['5xx']}</td></tr></tbody></table>
<div class="charts">${lineChart(`${listener.name}: requests per second`, '/s', [
    { className: 'total', label: 'all', values: history.requests },
    { className: 's4xx', label: '4xx', values: history['4xx'] },
    { className: 's5xx', label: '5xx', values: history['5xx'] },
  ], span)}${lineChart(`${listener.name}: latency`, 'ms', [
    { className: 'p50', label: 'p50', values: history.p50Ms },
    { className: 'p99', label: 'p99', values: history.p99Ms },
  ], span)}</div>`;
}

function routesTable(status: StatusJson): string {
  if (status.routes.length === 0) return '<p class="muted">no routes</p>';
  const rows = status.routes.map(
    (route) =>
      `<tr><td>${h(route.listener)}</td><td>${route.name ? h(route.name) : '<span class="muted">(no route)</span>'}</td><td>${h(route.target)}</td>${rateCells(route.rate)}<td class="n">${route.total.requests}</td><td class="n">${route.total['4xx']}</td><td class="n">${route.total['5xx']}</td>${limitedCell(route.rateLimited)}</tr>`,
  );
  return `<table><thead><tr><th>listener</th><th>route</th><th>to</th><th class="n">requests/s</th><th class="n">2xx/s</th><th class="n">4xx/s</th><th class="n">5xx/s</th><th class="n">p50</th><th class="n">p99</th><th class="n">requests</th><th class="n">4xx</th><th class="n">5xx</th><th class="n" title="refused with 429 by the route's rateLimit (shadow: over the limit, let through)">rate-limited</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function limitedCell(counts: { limited: number; shadow: number }): string {
  const shadow = counts.shadow > 0 ? ` <span class="muted">(+${counts.shadow} shadow)</span>` : '';
  return `<td class="n">${counts.limited}${shadow}</td>`;
}

/** Days left under which a certificate is flagged (renewal tools such as cert-manager renew at 30 days; 14 left means renewal failed). */
const EXPIRING_DAYS = 14;

function certificatesTable(certificates: readonly CertificateJson[]): string {
  if (certificates.length === 0) return '<p class="muted">none (no TLS files configured)</p>';
  const rows = certificates.map((certificate) => {
    const state = certificate.daysLeft < 0 ? 'expired' : certificate.daysLeft < EXPIRING_DAYS ? 'expiring' : 'healthy';
    const use = certificate.serverNames?.length ? `${certificate.use}: ${certificate.serverNames.join(', ')}` : certificate.use;
    return `<tr data-certificate="${h(certificate.sha256)}"><td>${h(certificate.owner)}</td><td>${h(use)}</td><td><code>${h(certificate.subject)}</code></td><td>${certificate.sans.map((name) => `<code>${h(name)}</code>`).join(' ')}</td><td>${h(certificate.notAfter.slice(0, 10))}</td><td class="n"><span class="state ${state}">${certificate.daysLeft}</span></td><td><code>${h(certificate.file)}</code></td></tr>`;
  });
  return `<table><thead><tr><th>of</th><th>use</th><th>subject</th><th>names</th><th>expires</th><th class="n">days left</th><th>file</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function rateCells(rate: RatesJson): string {
  return `<td class="n">${num(rate.requests)}</td><td class="n">${num(rate['2xx'])}</td><td class="n">${num(rate['4xx'])}</td><td class="n">${num(rate['5xx'])}</td><td class="n">${ms(rate.p50Ms)}</td><td class="n">${ms(rate.p99Ms)}</td>`;
}

function upstreamsTable(upstreams: readonly UpstreamJson[]): string {
  if (upstreams.length === 0) return '<p class="muted">no upstreams</p>';
  const rows = upstreams.flatMap((upstream) =>
    upstream.endpoints.map(
      (endpoint, index) =>
        `<tr data-upstream="${h(upstream.name)}">${index === 0 ? `<td rowspan="${upstream.endpoints.length}">${h(upstream.name)}</td><td rowspan="${upstream.endpoints.length}"><span class="state ${h(upstream.breaker)}">${h(breakerText(upstream.breaker))}</span></td><td class="n" rowspan="${upstream.endpoints.length}">${upstream.retries}</td>` : ''}${endpointCells(endpoint)}</tr>`,
    ),
  );
  return `<table><thead><tr><th>upstream</th><th>breaker</th><th class="n">retries</th><th>endpoint</th><th>state</th><th class="n">in flight</th><th class="n">failures</th><th>last error</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function endpointCells(endpoint: EndpointJson): string {
  const last = endpoint.lastError
    ? `<code>${h(endpoint.lastError)}</code> <span class="muted">${clock(endpoint.lastErrorAt ?? '')}</span>`
    : endpoint.state === 'unhealthy'
      ? 'failing its health checks'
      : '<span class="muted">none</span>';
  return `<td><code>${h(endpoint.url)}</code></td><td><span class="state ${endpoint.state}">${endpoint.state}</span></td><td class="n">${endpoint.inFlight}</td><td class="n">${endpoint.failures}</td><td>${last}</td>`;
}

function breakerText(state: string): string {
  return state === 'half_open' ? 'half-open' : state;
}

function errorsTable(status: StatusJson): string {
  if (status.recentErrors.length === 0) return '<p class="muted">none</p>';
  const rows = status.recentErrors.map(
    (entry) =>
      `<tr><td>${clock(entry.time)}</td><td class="n">${entry.status}</td><td><code>${h(entry.code)}</code></td><td>${h(entry.listener)}</td><td>${h(entry.route)}</td><td>${h(entry.upstream)}</td><td><code>${h(entry.endpoint)}</code></td><td>${h(entry.method)} <code>${h(entry.path)}</code></td><td><code>${h(entry.reqId)}</code></td></tr>`,
  );
  return `<table><thead><tr><th>time (UTC)</th><th class="n">status</th><th>code</th><th>listener</th><th>route</th><th>upstream</th><th>endpoint</th><th>request</th><th>request id</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/** An ISO time as its time of day (UTC), the whole of it in the tooltip and the datetime attribute. */
function clock(iso: string): string {
  const time = /T(\d\d:\d\d:\d\d)/.exec(iso)?.[1];
  return time ? `<time datetime="${h(iso)}" title="${h(iso)}">${time}</time>` : h(iso);
}

function num(value: number): string {
  return formatNumber(value);
}

function ms(value: number | null): string {
  return value === null ? '<span class="muted">–</span>' : `${formatNumber(value)} ms`;
}

function percent(value: number | null): string {
  return value === null ? '–' : `${value.toFixed(1)}%`;
}

function bytes(value: number): string {
  if (value <= 0) return '–';
  const mib = value / (1024 * 1024);
  return mib >= 1024 ? `${(mib / 1024).toFixed(2)} GiB` : `${mib.toFixed(1)} MiB`;
}

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const hours = Math.floor((seconds % 86_400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return d > 0 ? `${d}d ${hours}h ${m}m` : hours > 0 ? `${hours}h ${m}m` : m > 0 ? `${m}m ${s}s` : `${s}s`;
}
