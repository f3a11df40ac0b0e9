/**
 * Whether processes and ports are gone, for the lifecycle tests: polled, each
 * wait bounded in tries and time.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { spawnSidecar, type SidecarProcess } from './process.ts';

/** A pid that no longer runs: no such process, or a zombie nobody has reaped yet (PID 1 of a container may not reap). */
export function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** Polls until `pid` is gone; false if it still runs after `timeoutMs`. */
export async function processGone(pid: number, timeoutMs = 5_000): Promise<boolean> {
  const tries = Math.ceil(timeoutMs / 50);
  for (let i = 0; i < tries; i++) {
    if (isGone(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return isGone(pid);
}

/** Binds 127.0.0.1:`port` and lets go again; false if it stays taken for `timeoutMs`. */
export async function portBindable(port: number, timeoutMs = 5_000): Promise<boolean> {
  const tries = Math.max(1, Math.ceil(timeoutMs / 50));
  for (let i = 0; i < tries; i++) {
    const bound = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (bound) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** Reads a pid a test app wrote to `file`, waiting for it to appear. */
export async function readPidFile(file: string, timeoutMs = 10_000): Promise<number> {
  const tries = Math.ceil(timeoutMs / 50);
  for (let i = 0; i < tries; i++) {
    try {
      const pid = Number(readFileSync(file, 'utf8'));
      if (pid > 0) return pid;
    } catch {
      // not written yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no pid in ${file} after ${timeoutMs} ms`);
}

/** SIGKILL for a test's leftover process, if it still runs. */
export function killIfAlive(pid: number): void {
  if (!isGone(pid)) process.kill(pid, 'SIGKILL');
}

/**
 * Runs the sidecar with the config `file` and, as its app, `-- node -e` an
 * idle program that writes its pid beside the config. `cleanup` gets what
 * SIGKILLs both if a test leaves them running.
 */
export async function spawnWithIdleApp(file: string, cleanup: Array<() => unknown>): Promise<{ proc: SidecarProcess; appPid: number }> {
  const pidFile = join(dirname(file), 'app.pid');
  const app = `require('node:fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); setInterval(() => {}, 60_000);`;
  const proc = await spawnSidecar(['--config', file, '--', process.execPath, '-e', app]);
  cleanup.push(() => void proc.stop('SIGKILL'));
  const appPid = await readPidFile(pidFile);
  cleanup.push(() => killIfAlive(appPid));
  return { proc, appPid };
}
