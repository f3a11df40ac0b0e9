/**
 * The external programs the benchmark compares with or drives: wrk, hey and
 * h2load (load; hey is the constant-rate client of the latency scenarios,
 * h2load comes in Debian's nghttp2-client), NGINX (a peer, and the upstream of
 * the throughput scenarios), HAProxy and Squid (peers), and NGINX's brotli
 * filter module (the brotli compression scenario). Missing ones are installed with apt-get when we are
 * root and the package mirror answers; otherwise their peers (or the
 * scenario) are skipped with the reason.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

export const TOOLS = ['wrk', 'nginx', 'squid', 'h2load', 'haproxy', 'hey'] as const;
export type Tool = (typeof TOOLS)[number];

/** The Debian package of each tool. */
const PACKAGE: Record<Tool, string> = { wrk: 'wrk', nginx: 'nginx', squid: 'squid', h2load: 'nghttp2-client', haproxy: 'haproxy', hey: 'hey' };

/** Absolute path of each tool found, or why it is missing; for nginx also its brotli filter module, when there is one. */
export type ToolStatus = Record<Tool, { path?: string; missing?: string; brotliModule?: string }>;

/** Debian's package of ngx_brotli's filter, and where its module lands. */
const BROTLI_PACKAGE = 'libnginx-mod-http-brotli-filter';
const BROTLI_MODULES = ['/usr/lib/nginx/modules/ngx_http_brotli_filter_module.so', '/usr/share/nginx/modules/ngx_http_brotli_filter_module.so'];

function findBrotliModule(): string | undefined {
  for (const file of BROTLI_MODULES) {
    try {
      accessSync(file, constants.R_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

const SEARCH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

function find(tool: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...SEARCH];
  for (const dir of dirs) {
    try {
      accessSync(`${dir}/${tool}`, constants.X_OK);
      return `${dir}/${tool}`;
    } catch {
      // not here
    }
  }
  return undefined;
}

function run(cmd: string, args: string[], timeoutMs: number): { ok: boolean; output: string } {
  const result = spawnSync(cmd, args, {
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-3).join(' | ');
  if (result.error) return { ok: false, output: `${result.error.message} ${output}` };
  return { ok: result.status === 0, output };
}

/**
 * Finds the tools; installs the missing ones when allowed.
 * `log` receives one line per step, so a slow apt-get is visible.
 */
export function ensureTools(allowInstall: boolean, log: (line: string) => void): ToolStatus {
  const status = {} as ToolStatus;
  const missing: string[] = [];
  for (const tool of TOOLS) {
    const path = find(tool);
    status[tool] = path ? { path } : { missing: 'not installed' };
    if (!path) missing.push(PACKAGE[tool]);
  }
  if (!findBrotliModule()) missing.push(BROTLI_PACKAGE);
  if (missing.length === 0) return withBrotli(status);

  let why: string | undefined;
  if (!allowInstall) why = 'not installed (--no-install given)';
  else if (process.getuid?.() !== 0) why = 'not installed (apt-get needs root; run `apt-get install -y wrk nginx squid haproxy hey nghttp2-client`)';
  else if (!find('apt-get')) why = 'not installed (no apt-get on this machine)';
  if (!why) {
    log(`setup: installing ${missing.join(' ')} with apt-get (bounded to 5 minutes)`);
    const update = run('apt-get', ['update'], 120_000);
    if (!update.ok) log(`setup: apt-get update failed: ${update.output}`);
    const install = run('apt-get', ['install', '-y', '--no-install-recommends', ...missing], 180_000);
    if (!install.ok) why = `apt-get install failed: ${install.output}`;
  }
  for (const tool of TOOLS) {
    if (!missing.includes(PACKAGE[tool])) continue;
    const path = find(tool);
    status[tool] = path ? { path } : { missing: why ?? 'apt-get install ran but the binary is still missing' };
  }
  if (!findBrotliModule()) log(`setup: no NGINX brotli module (${why ?? `${BROTLI_PACKAGE} did not install it`}): nginx is skipped in compress-br-64k`);
  return withBrotli(status);
}

function withBrotli(status: ToolStatus): ToolStatus {
  const module = findBrotliModule();
  if (status.nginx.path && module) status.nginx.brotliModule = module;
  return status;
}
