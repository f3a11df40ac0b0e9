/**
 * `npm run smoke [-- REPO] [--keep]`: what a newcomer does, step by step, each
 * step reported PASS or FAIL; exit 1 when any failed. Not part of `npm test`
 * (60-90 s, mostly npm); nothing runs it for you: CI can, after `npm test`.
 *
 * 1. The README's quick start, literally, in a fresh clone of REPO (default:
 *    this checkout; a clone has the committed state): `git clone`, `npm ci`,
 *    `npm start`, then the README's curl lines against its fixed ports
 *    (8080, 9901, 15001 and the demo app's 3000 must be free).
 * 2. Beside your own app: `npm pack` of that clone installed into a separate
 *    app folder, `npx sidecar --config sidecar.yaml` there, with an app of
 *    that folder that the sidecar starts and that calls out through the
 *    sidecar's egress; then the folder itself installed (`npm install <clone>`).
 *
 * Every address is loopback; the egress request to example.com is refused by
 * the sidecar (403) and never leaves the machine.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { install, pack, userEnv } from './package-install.ts';

const args = process.argv.slice(2);
const keep = args.includes('--keep');
const repo = args.find((arg) => !arg.startsWith('--')) ?? resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'sidecar-smoke-'));
const clone = join(work, 'sidecar');
// A user's shell: the system's node first, no npm variables, no proxy for curl's own requests.
const env = userEnv(Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(https?|no|all)_proxy$/i.test(name))));
const results: Array<{ step: string; ok: boolean }> = [];
const running = new Set<ChildProcess>();

function report(step: string, ok: boolean, detail = ''): boolean {
  results.push({ step, ok });
  process.stdout.write(`${ok ? 'PASS' : 'FAIL'}  ${step}${detail && !ok ? `\n      ${detail.trim().split('\n').join('\n      ')}` : ''}\n`);
  return ok;
}

/** Runs a command to its end (bounded); PASS when it exits 0. */
function run(step: string, file: string, argv: string[], cwd: string, timeoutMs = 300_000): boolean {
  const result = spawnSync(file, argv, { cwd, env, encoding: 'utf8', timeout: timeoutMs });
  return report(step, result.status === 0, `exit ${result.status ?? result.signal}\n${(result.stderr || result.stdout).slice(-1500)}`);
}

interface Answer {
  status: number;
  headers: string;
  body: string;
}

/** One curl request; `extra` are curl options such as `-x PROXY`. */
function curl(url: string, extra: string[] = [], maxSeconds = 10): Answer {
  const result = spawnSync('curl', ['-s', '-i', '--max-time', String(maxSeconds), ...extra, url], { env, encoding: 'utf8', timeout: (maxSeconds + 5) * 1000 });
  const text = result.stdout ?? '';
  const split = text.indexOf('\r\n\r\n');
  const headers = split === -1 ? text : text.slice(0, split);
  return { status: Number(/^HTTP\/[\d.]+ (\d{3})/.exec(text)?.[1] ?? 0), headers: headers.toLowerCase(), body: split === -1 ? '' : text.slice(split + 4) };
}

function check(step: string, answer: Answer, ok: (answer: Answer) => boolean): boolean {
  return report(step, ok(answer), `got ${answer.status}\n${answer.headers}\n${answer.body.slice(0, 300)}`);
}

/** Starts a long-running command in its own process group (npm, a shell, the sidecar, its app). */
function start(file: string, argv: string[], cwd: string, log: string): ChildProcess {
  const child = spawn(file, argv, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)));
  child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)));
  child.on('exit', () => {
    try {
      writeFileSync(join(work, log), output); // kept for a look when a step failed
    } catch {
      // the folder is gone already: every step passed
    }
  });
  running.add(child);
  child.on('exit', () => running.delete(child));
  return child;
}

/** Whether any process of the group (npm, a shell, the sidecar, its app) is still there. */
function groupAlive(child: ChildProcess): boolean {
  try {
    process.kill(-child.pid!, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * SIGTERM to the whole group, as a terminal's Ctrl-C or a container stop does; SIGKILL after 15 s.
 * Resolves true when every process of the group was gone by then without SIGKILL.
 */
async function stop(child: ChildProcess): Promise<boolean> {
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, name);
    } catch {
      // already gone
    }
  };
  signal('SIGTERM');
  const until = Date.now() + 15_000;
  while (groupAlive(child) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  const clean = !groupAlive(child);
  if (!clean) signal('SIGKILL');
  return clean;
}

/** Polls `url` until it answers 200 (at most `seconds`), or the process exits. */
async function ready(step: string, url: string, child: ChildProcess, seconds = 90): Promise<boolean> {
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until && child.exitCode === null) {
    if (curl(url, [], 2).status === 200) return report(step, true);
    await new Promise((r) => setTimeout(r, 250));
  }
  return report(step, false, child.exitCode === null ? `${url} not 200 within ${seconds} s` : `exited with ${child.exitCode} (see ${work})`);
}

function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '0.0.0.0', () => server.close(() => done(true)));
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

/** Part 1; returns whether the clone is installed (part 2 needs it, whatever the curl lines said). */
async function quickStart(): Promise<boolean> {
  if (!run(`git clone ${repo}`, 'git', ['clone', '--quiet', repo, clone], work)) return false;
  if (!run('npm ci', 'npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], clone, 600_000)) return false;
  const busy: number[] = [];
  for (const port of [8080, 9901, 15001, 3000]) if (!(await portFree(port))) busy.push(port);
  if (!report("the README's ports are free", busy.length === 0, `in use: ${busy.join(', ')} (another sidecar or demo running?)`)) return true;

  const sidecar = start('npm', ['start'], clone, 'npm-start.log');
  if (await ready('npm start: admin /readyz answers 200', 'http://127.0.0.1:9901/readyz', sidecar)) {
    check('curl localhost:8080/', curl('localhost:8080/'), (a) => a.status === 200 && a.body.includes('from the demo app'));
    check('curl localhost:8080/echo', curl('localhost:8080/echo'), (a) => a.status === 200 && ['x-forwarded-for', 'x-request-id', 'traceparent', 'via'].every((h) => a.body.includes(`"${h}"`)));
    check('curl -N localhost:8080/events', curl('localhost:8080/events', ['-N'], 4), (a) => a.status === 200 && a.body.includes('data: tick 1'));
    check('curl -i localhost:8080/static/', curl('localhost:8080/static/'), (a) => a.status === 200 && a.headers.includes('etag:') && a.headers.includes('cache-control:'));
    check('curl localhost:9901/readyz', curl('localhost:9901/readyz'), (a) => a.status === 200);
    check('curl -x http://127.0.0.1:15001 http://demo.internal/echo', curl('http://demo.internal/echo', ['-x', 'http://127.0.0.1:15001']), (a) => a.status === 200 && a.body.includes('"demo.internal"'));
    check('curl -x http://127.0.0.1:15001 http://example.com/ (403)', curl('http://example.com/', ['-x', 'http://127.0.0.1:15001']), (a) => a.status === 403 && a.headers.includes('x-sidecar-error: destination_denied'));
  }
  report('npm start: SIGTERM stops the sidecar and the demo app within 15 s', await stop(sidecar), `still running after 15 s (see ${work})`);
  return true;
}

const APP = `// An app of this folder: the sidecar starts it and proxies to it; /outbound calls out through the sidecar's egress.
import { createServer } from 'node:http';
createServer(async (req, res) => {
  if (req.url === '/outbound') {
    const answer = await fetch('http://self.internal/hello'); // HTTP_PROXY and NODE_USE_ENV_PROXY come from the sidecar
    return res.end(\`outbound: \${answer.status} \${await answer.text()}\`);
  }
  res.end(req.url === '/healthz' ? 'ok' : \`my-app saw \${req.url}\`);
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

async function besideYourApp(): Promise<void> {
  let tarball: string;
  try {
    tarball = pack(clone, work);
    report('npm pack (the clone)', true);
  } catch (error) {
    report('npm pack (the clone)', false, (error as Error).message);
    return;
  }
  const app = join(work, 'my-app');
  mkdirSync(join(app, 'public'), { recursive: true });
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'my-app', private: true, type: 'module' }));
  writeFileSync(join(app, 'public', 'hello.txt'), 'a file of my-app\n');
  writeFileSync(join(app, 'app.js'), APP);
  const [appPort, admin, ingress, egress] = [await freePort(), await freePort(), await freePort(), await freePort()];
  writeFileSync(
    join(app, 'sidecar.yaml'),
    `admin: { listen: 127.0.0.1:${admin} }
app:
  command: [node, app.js]
  env: { PORT: "${appPort}" }
  ready: { url: http://127.0.0.1:${appPort}/healthz, timeout: 30s }
upstreams:
  app: { endpoints: [http://127.0.0.1:${appPort}] }
ingress:
  listen: 127.0.0.1:${ingress}
  routes:
    - { match: { path: /static/ }, static: { root: ./public } }
    - { match: { path: / }, upstream: app, timeout: 10s }
egress:
  listen: 127.0.0.1:${egress}
  routes:
    - { match: { host: self.internal }, upstream: app }
`,
  );
  const installed = install(app, tarball, env);
  if (!report(`npm install <the tarball> in my-app${installed.ok ? ` (${installed.how})` : ''}`, installed.ok, installed.ok ? '' : installed.output)) return;

  const sidecar = start('npx', ['sidecar', '--config', 'sidecar.yaml'], app, 'my-app-sidecar.log');
  if (await ready('my-app: npx sidecar --config sidecar.yaml is ready (app started)', `http://127.0.0.1:${admin}/readyz`, sidecar)) {
    const base = `http://127.0.0.1:${ingress}`;
    check('my-app: ingress -> the app', curl(`${base}/orders`), (a) => a.status === 200 && a.body === 'my-app saw /orders');
    check('my-app: ingress -> ./public', curl(`${base}/static/hello.txt`), (a) => a.status === 200 && a.body === 'a file of my-app\n');
    check('my-app: the app calls out through egress', curl(`${base}/outbound`), (a) => a.status === 200 && a.body === 'outbound: 200 my-app saw /hello');
  }
  report('my-app: SIGTERM stops the sidecar and the app within 15 s', await stop(sidecar), `still running after 15 s (see ${work})`);

  const linked = join(work, 'linked-app');
  mkdirSync(linked);
  writeFileSync(join(linked, 'package.json'), JSON.stringify({ name: 'linked-app', private: true }));
  writeFileSync(join(linked, 'sidecar.yaml'), 'admin: { listen: 127.0.0.1:0 }\n');
  const folder = install(linked, clone, env);
  if (report('npm install <the clone folder> in linked-app', folder.ok, folder.ok ? '' : folder.output)) {
    run('linked-app: npx sidecar check --config sidecar.yaml', 'npx', ['sidecar', 'check', '--config', 'sidecar.yaml'], linked, 60_000);
  }
}

try {
  if (await quickStart()) await besideYourApp();
} finally {
  for (const child of running) await stop(child);
  const failed = results.filter((r) => !r.ok).length;
  process.stdout.write(`\n${results.length - failed} passed, ${failed} failed${failed > 0 || keep ? ` (files kept in ${work})` : ''}\n`);
  if (failed === 0 && !keep) rmSync(work, { recursive: true, force: true });
  process.exitCode = failed > 0 ? 1 : 0;
}
