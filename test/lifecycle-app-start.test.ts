/**
 * An app that cannot start, or does not become ready (issue 20). With
 * `restart: never` the sidecar exits, with a clear message on stderr: 127 when
 * the command is not found and 126 when it is not executable (as a shell
 * does), 1 when `app.ready.timeout` passes. With `restart: on-failure` or
 * `always` the app is retried with the restart backoff instead. Before the
 * fix a command that could not be spawned left the sidecar answering 503
 * app_not_ready forever, never retried, and a ready timeout was only logged.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';
import { closedPort } from './helpers/servers.ts';
import { killIfAlive, processGone } from './helpers/lifecycle.ts';
import { waitFor } from './helpers/reload.ts';

const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

const BASE = `
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: true }
`;

async function start(args: string[], env: NodeJS.ProcessEnv = {}): Promise<SidecarProcess> {
  const proc = await spawnSidecar(args, { waitListening: false, env });
  cleanup.push(() => void proc.stop('SIGKILL'));
  return proc;
}

/** The exit code, or 'still running' after 10 s (before the fix: forever). */
function exitOf(proc: SidecarProcess): Promise<number | null | string> {
  return Promise.race([proc.exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 10_000))]);
}

const countLines = (proc: SidecarProcess, msg: RegExp) => proc.lines.filter((line) => typeof line.msg === 'string' && msg.test(line.msg)).length;

describe('an app that cannot start, restart: never', () => {
  it('a path that does not exist: exit 127, and stderr says which command', async () => {
    const proc = await start(['--config', writeConfig(BASE), '--', '/nonexistent/bin/my-app', '--port', '1']);
    expect(await exitOf(proc)).toBe(127);
    expect(proc.stderr()).toContain('the app could not be started: /nonexistent/bin/my-app: no such file');
  });

  it('a name not on PATH: exit 127', async () => {
    const proc = await start(['--config', writeConfig(BASE), '--', 'no-such-command-7f3a']);
    expect(await exitOf(proc)).toBe(127);
    expect(proc.stderr()).toContain('no-such-command-7f3a: not found on PATH');
  });

  it('a file that is not executable: exit 126', async () => {
    const file = writeConfig(`${BASE}app: { command: [./server.sh] }\n`);
    const script = join(dirname(file), 'server.sh');
    writeFileSync(script, '#!/bin/sh\nsleep 60\n');
    chmodSync(script, 0o644);
    const proc = await start(['--config', file]);
    expect(await exitOf(proc)).toBe(126);
    expect(proc.stderr()).toContain('./server.sh: permission denied (not executable)');
  });
});

describe('an app that cannot start, restart: on-failure', () => {
  it('is retried with the backoff and each failure logged; the sidecar stays up (503) and SIGTERM exits 0', async () => {
    const proc = await start(['--config', writeConfig(`${BASE}app: { command: [/nonexistent/bin/my-app], restart: on-failure }\n`)]);
    await waitFor('three failed starts', () => (countLines(proc, /^app could not be started/) >= 3 ? true : undefined), 10_000);
    expect(countLines(proc, /^restarting app$/)).toBeGreaterThanOrEqual(2);
    expect(proc.child.exitCode).toBeNull();
    const adminPort = proc.lines.find((line) => line.msg === 'sidecar listening')?.adminPort;
    const readyz = await request(`http://127.0.0.1:${adminPort}/readyz`);
    await readyz.body.text();
    expect(readyz.statusCode).toBe(503);
    proc.child.kill('SIGTERM');
    expect(await exitOf(proc)).toBe(0);
  });
});

/** An app that starts but never listens: appends its pid to app.pids (in the config's folder) and idles. */
const NEVER_READY = `require('node:fs').appendFileSync('app.pids', process.pid + '\\n'); setInterval(() => {}, 60_000);`;

function readyTimeoutConfig(restart: string, readyPort: number): string {
  return writeConfig(`${BASE}app:
  command: [${JSON.stringify(process.execPath)}, -e, ${JSON.stringify(NEVER_READY)}]
  ready: { url: "http://127.0.0.1:${readyPort}/healthz", timeout: 1s, interval: 100ms }
  restart: ${restart}
  stopTimeout: 2s
`);
}

function appPids(file: string): number[] {
  try {
    return readFileSync(join(dirname(file), 'app.pids'), 'utf8').trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

describe('app.ready.timeout passes', () => {
  it('restart: never: the app is stopped and the sidecar exits 1, saying why on stderr', async () => {
    const file = readyTimeoutConfig('never', await closedPort());
    const proc = await start(['--config', file]);
    cleanup.push(() => {
      for (const pid of appPids(file)) killIfAlive(pid);
    });
    expect(await exitOf(proc)).toBe(1);
    expect(proc.stderr()).toMatch(/the app did not become ready within 1 s \(http:\/\/127\.0\.0\.1:\d+\/healthz\)/);
    const [pid] = appPids(file);
    expect(pid).toBeGreaterThan(0);
    expect(await processGone(pid)).toBe(true);
  });

  it('restart: on-failure: the app is stopped and started again', async () => {
    const file = readyTimeoutConfig('on-failure', await closedPort());
    const proc = await start(['--config', file]);
    cleanup.push(() => {
      for (const pid of appPids(file)) killIfAlive(pid);
    });
    const pids = await waitFor('a second start', () => (appPids(file).length >= 2 ? appPids(file) : undefined), 10_000);
    expect(await processGone(pids[0])).toBe(true);
    expect(proc.child.exitCode).toBeNull();
    proc.child.kill('SIGTERM');
    expect(await exitOf(proc)).toBe(0);
    for (const pid of appPids(file)) expect(await processGone(pid)).toBe(true);
  });
});
