/**
 * `node scripts/rss.ts [--seconds 10] [--flags "--max-semi-space-size=8 ..."] [--skip-load]`:
 * the sidecar's memory (issue 22's targets), as `npm start` runs it: the
 * realistic config (access log to a file, metrics, retry, breaker, static and
 * egress routes as in bench/lib/configs.ts), a compile cache warmed first,
 * the sidecar pinned to CPU 0, the upstream and wrk to CPU 1. Prints VmRSS
 * after readiness, the peak VmRSS (sampled every 50 ms) under 50 keep-alive
 * connections of small proxied requests, and under 1 MiB POST uploads over
 * 10 connections (streamed to an upstream that reads them), then VmHWM.
 * Without --flags it takes the Node flags of `npm start` (package.json).
 * --phases c50,upload picks the load phases, --env "NAME=VALUE ..." adds to the sidecar's environment.
 * Everything listens on 127.0.0.1 and stops by itself. Needs wrk.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const args = process.argv.slice(2);
const option = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const seconds = Number(option('--seconds') ?? 10);
const MB = 2 ** 20;
/** Both units: the bench prints MiB as "MB"; the targets are read here as MiB and MB alike. */
const mem = (bytes: number): string => `${(bytes / MB).toFixed(1)} MiB (${(bytes / 1e6).toFixed(1)} MB)`;

/** The Node flags of `npm start`: every `--flag` between `node` and `src/cli.ts`. */
function startFlags(): string[] {
  const start = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
  const words = start.split(/\s+/);
  return words.slice(words.indexOf('node') + 1, words.indexOf('src/cli.ts')).filter((word) => word.startsWith('--'));
}
const flags = option('--flags')?.split(/\s+/).filter(Boolean) ?? startFlags();

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

function status(pid: number, field: string): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

const children: ChildProcess[] = [];
function run(cpu: string, command: string, argv: string[], env: NodeJS.ProcessEnv, out: string): ChildProcess {
  const fd = openSync(out, 'a');
  const child = spawn('taskset', ['-c', cpu, command, ...argv], { env, stdio: ['ignore', fd, fd], cwd: ROOT });
  children.push(child);
  return child;
}

async function waitReady(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${url}: the process exited (${child.exitCode})`);
    const ok = await fetch(url).then((res) => res.ok, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url}: not ready in 20 s`);
}

/** Runs wrk on CPU 1 while sampling the sidecar's VmRSS; the peak and wrk's summary line. */
async function load(pid: number, wrkArgs: string[]): Promise<{ peak: number; summary: string }> {
  let peak = status(pid, 'VmRSS');
  const timer = setInterval(() => (peak = Math.max(peak, status(pid, 'VmRSS'))), 50);
  const wrk = spawn('taskset', ['-c', '1', 'wrk', '-t1', `-d${seconds}s`, ...wrkArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  wrk.stdout.on('data', (chunk: Buffer) => (text += chunk));
  await new Promise((resolve) => wrk.on('exit', resolve));
  clearInterval(timer);
  const rate = /Requests\/sec:\s+(\S+)/.exec(text)?.[1] ?? '?';
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(text)?.[0] ?? 'no errors';
  return { peak, summary: `${rate} req/s, ${errors}` };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sidecar-rss-'));
  try {
    const [admin, ingress, egress, upstream] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    mkdirSync(join(dir, 'www'));
    writeFileSync(join(dir, 'www', 'a.txt'), 'x'.repeat(1024));
    const config = `admin: { listen: "127.0.0.1:${admin}" }
log: { level: info, access: true }
upstreams:
  app:
    endpoints: ["http://127.0.0.1:${upstream}"]
    connections: 128
    breaker: { errorRate: 0.5, minRequests: 20, window: 10s, openFor: 30s }
ingress:
  listen: "127.0.0.1:${ingress}"
  routes:
    - { name: assets, match: { path: /static/ }, static: { root: ${join(dir, 'www')}, maxAge: 1h } }
    - { name: app, match: { path: / }, upstream: app, timeout: 15s, retry: { attempts: 2 } }
egress:
  listen: "127.0.0.1:${egress}"
  routes:
    - { name: local, match: { host: 127.0.0.1, ports: [${upstream}] }, timeout: 10s, retry: { attempts: 2 } }
`;
    const file = join(dir, 'sidecar.yaml');
    writeFileSync(file, config);
    writeFileSync(join(dir, 'post.lua'), 'wrk.method = "POST"\nwrk.body = string.rep("x", 1048576)\nwrk.headers["Content-Type"] = "application/octet-stream"\n');
    const env = { ...process.env, ...Object.fromEntries((option('--env') ?? '').split(/\s+/).filter(Boolean).map((pair) => pair.split('='))), NODE_COMPILE_CACHE: join(dir, 'cache') };
    const cli = join(ROOT, 'src/cli.ts');
    // Warm the compile cache as `npm start` finds it from the second start on (and the image always).
    spawnSync(process.execPath, [...flags, cli, 'check', '--config', file], { env, stdio: 'ignore' });

    const up = run('1', process.execPath, [join(ROOT, 'bench/servers/upstream.ts'), String(upstream)], process.env, join(dir, 'upstream.log'));
    const sidecar = run('0', process.execPath, [...flags, ...(process.env.RSS_PRELOAD ? ['--import', process.env.RSS_PRELOAD] : []), cli, '--config', file], env, join(dir, 'sidecar.log'));
    await waitReady(`http://127.0.0.1:${upstream}/`, up);
    await waitReady(`http://127.0.0.1:${admin}/readyz`, sidecar);
    const pid = Number(readFileSync(`/proc/${sidecar.pid}/task/${sidecar.pid}/children`, 'utf8').trim() || sidecar.pid);
    await new Promise((r) => setTimeout(r, 1_000));
    console.log(`flags: ${flags.join(' ')}`);
    console.log(`RSS after readiness: ${mem(status(pid, 'VmRSS'))}, VmHWM so far ${mem(status(pid, 'VmHWM'))}; anonymous ${mem(status(pid, 'RssAnon'))}, file-backed ${mem(status(pid, 'RssFile'))}`);
    if (args.includes('--hold')) await new Promise((r) => setTimeout(r, Number(option('--hold')) * 1000));
    if (!args.includes('--skip-load')) {
      const phases = option('--phases')?.split(',') ?? ['c50', 'upload'];
      if (phases.includes('c50')) {
        const small = await load(pid, ['-c50', `http://127.0.0.1:${ingress}/`]);
        console.log(`c50 small: peak RSS ${mem(small.peak)}; ${small.summary}`);
      }
      if (phases.includes('upload')) {
        const upload = await load(pid, ['-c10', '-s', join(dir, 'post.lua'), `http://127.0.0.1:${ingress}/upload`]);
        console.log(`1 MiB uploads c10: peak RSS ${mem(upload.peak)}; ${upload.summary}`);
      }
      console.log(`VmHWM over the run: ${mem(status(pid, 'VmHWM'))}`);
    }
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
