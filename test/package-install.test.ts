/**
 * The command from anywhere (issue 23): `npm pack` the repository, install the
 * tarball into an app's own folder as a user would (from the npm cache), and
 * run `npx sidecar --config sidecar.yaml` there with the user's PATH, whose
 * `node` may be older than 24 (Debian's 20 on these machines). The package's
 * bin finds a Node 24 (the one running it, else the one it brings) and runs the
 * JavaScript that `npm pack` built; relative paths on the command line are
 * the user's, those in the config the config file's.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { install, pack, userEnv } from '../scripts/package-install.ts';
import { ROOT, spawnSidecar } from './helpers/process.ts';
import { startHttpServer } from './helpers/servers.ts';

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const work = mkdtempSync(join(tmpdir(), 'sidecar-install-'));
const app = join(work, 'my-app');
const env = userEnv();
let skipped: string | undefined;

beforeAll(() => {
  mkdirSync(join(app, 'public'), { recursive: true });
  mkdirSync(join(app, 'scripts'));
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'my-app', private: true, scripts: { 'check-config': 'sidecar check --config sidecar.yaml' } }));
  writeFileSync(join(app, 'public', 'hello.txt'), 'hello from my-app/public\n');
  const tarball = pack(ROOT, work);
  const installed = install(app, tarball, env);
  if (!installed.ok) skipped = `neither the npm cache nor the registry could install the package:\n${installed.output}`;
}, 400_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the installed package', () => {
  it('npx sidecar --config sidecar.yaml serves the folder\'s static files and proxies to its app', async (ctx) => {
    if (skipped) return ctx.skip(skipped);
    const upstream = await startHttpServer((req, res) => res.end(`app saw ${req.url}`));
    writeFileSync(
      join(app, 'sidecar.yaml'),
      `admin: { listen: 127.0.0.1:0 }
upstreams: { app: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: /static/ }, static: { root: ./public } }
    - { match: { path: / }, upstream: app, timeout: 5s }
`,
    );
    const sidecar = await spawnSidecar(['--config', 'sidecar.yaml'], { env, command: { file: 'npx', args: ['sidecar'], cwd: app } });
    try {
      const base = `http://127.0.0.1:${sidecar.ingressPort}`;
      const file = await request(`${base}/static/hello.txt`);
      expect([file.statusCode, await file.body.text()]).toEqual([200, 'hello from my-app/public\n']);
      const proxied = await request(`${base}/orders?id=1`);
      expect([proxied.statusCode, await proxied.body.text()]).toEqual([200, 'app saw /orders?id=1']);
    } finally {
      await sidecar.stop();
      await upstream.close();
    }
    expect(sidecar.stderr()).not.toMatch(/Warning/);
  });

  it('node_modules/.bin/sidecar run directly finds a Node 24 even when the `node` on PATH is older', (ctx) => {
    if (skipped) return ctx.skip(skipped);
    const result = spawnSync(join(app, 'node_modules', '.bin', 'sidecar'), ['--version'], { cwd: app, env, encoding: 'utf8', timeout: 30_000 });
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(new RegExp(`^sidecar ${VERSION.replaceAll('.', '\\.')} \\(Node\\.js v(2[4-9]|[3-9]\\d)\\.`));
    expect(result.status).toBe(0);
  });

  it('a script of the app\'s own package.json, run from a subfolder, reads paths from the package folder like any npm script', (ctx) => {
    if (skipped) return ctx.skip(skipped);
    writeFileSync(join(app, 'sidecar.yaml'), 'admin: { listen: 127.0.0.1:0 }\ningress:\n  routes: [{ match: { path: / }, static: { root: ./public } }]\n');
    const result = spawnSync('npm', ['run', '--silent', 'check-config'], { cwd: join(app, 'scripts'), env, encoding: 'utf8', timeout: 60_000 });
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(new RegExp(`^${join(app, 'sidecar.yaml')}: ok`));
    expect(result.status).toBe(0);
  });

  it('npm exec --prefix <the repository> -- sidecar runs the checkout\'s sources, paths from the current folder', () => {
    const elsewhere = mkdtempSync(join(work, 'elsewhere-'));
    writeFileSync(join(elsewhere, 'x.yaml'), 'admin: { listen: 127.0.0.1:0 }\n');
    const result = spawnSync('npm', ['exec', '--prefix', ROOT, '--', 'sidecar', 'check', '--config', 'x.yaml'], { cwd: elsewhere, env, encoding: 'utf8', timeout: 60_000 });
    expect(result.stdout).toMatch(new RegExp(`^${join(elsewhere, 'x.yaml')}: ok`));
    expect(result.status).toBe(0);
  });
});
