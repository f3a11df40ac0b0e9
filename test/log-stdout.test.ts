/**
 * Where stdout goes changes how the sidecar writes its log (log.ts): a
 * regular file is written synchronously, a pipe asynchronously, and a stdout
 * that fails (here /dev/full, which answers every write with ENOSPC, like a
 * full disk) loses lines, never the proxy: requests are still served, the
 * failure is said once on stderr, and SIGTERM still ends the process.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, ROOT, writeConfig } from './helpers/process.ts';
import { closedPort, startHttpServer, type TestServer } from './helpers/servers.ts';

const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function setup(): Promise<{ config: string; ingress: number; admin: number }> {
  const upstream: TestServer = await startHttpServer((_req, res) => res.end('hello'));
  cleanup.push(() => upstream.close());
  const [ingress, admin] = [await closedPort(), await closedPort()];
  const config = writeConfig(`
admin: { listen: 127.0.0.1:${admin} }
log: { level: info, access: true }
upstreams:
  app: { endpoints: [http://127.0.0.1:${upstream.port}] }
ingress:
  listen: 127.0.0.1:${ingress}
  routes:
    - { name: app, match: { path: / }, upstream: app }
`);
  return { config, ingress, admin };
}

/** Runs the sidecar with stdout on `stdoutFd`; resolves once its admin port answers. */
async function start(config: string, admin: number, stdoutFd: number) {
  const child = spawn(process.execPath, [CLI, '--config', config], { cwd: ROOT, stdio: ['ignore', stdoutFd, 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  cleanup.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  // Up to 15 s, as spawnSidecar allows: a cold start on a busy 2-core machine can take seconds.
  for (let i = 0; i < 300 && child.exitCode === null; i++) {
    const ready = await request(`http://127.0.0.1:${admin}/readyz`).then((r) => r.body.text().then(() => r.statusCode), () => 0);
    if (ready === 200) return { child, exited, stderr: () => stderr };
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`sidecar did not start (exit code ${child.exitCode}): ${stderr}`);
}

async function get(port: number, path: string): Promise<number> {
  const res = await request(`http://127.0.0.1:${port}${path}`);
  await res.body.text();
  return res.statusCode;
}

describe('log destinations', () => {
  it('stdout on a regular file: every access line is there, whole and in order, once the process has stopped', async () => {
    const { config, ingress, admin } = await setup();
    const file = join(mkdtempSync(join(tmpdir(), 'sidecar-log-')), 'out.log');
    const fd = openSync(file, 'w');
    const sidecar = await start(config, admin, fd);
    closeSync(fd);
    const paths = Array.from({ length: 100 }, (_, i) => `/n${i}`);
    for (const path of paths) expect(await get(ingress, path)).toBe(200);
    sidecar.child.kill('SIGTERM');
    expect(await sidecar.exited).toBe(0);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const access = lines.filter((line) => line.log === 'access');
    expect(access.map((line) => line.path)).toEqual(paths);
    expect(lines.some((line) => line.msg === 'stopped')).toBe(true);
  });

  it('stdout failing with ENOSPC (/dev/full): requests are served, stderr says so once, SIGTERM still exits', async () => {
    const { config, ingress, admin } = await setup();
    const fd = openSync('/dev/full', 'w');
    const sidecar = await start(config, admin, fd);
    closeSync(fd);
    for (let i = 0; i < 200; i++) expect(await get(ingress, `/full${i}`)).toBe(200);
    const started = Date.now();
    sidecar.child.kill('SIGTERM');
    expect(await sidecar.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000); // the drain deadline; before the fix it never exited
    const reports = sidecar.stderr().match(/log write failed \(ENOSPC\)/g) ?? [];
    expect(reports.length).toBe(1);
  });
});
