/**
 * No orphans (issue 20): when the sidecar process is killed outright
 * (SIGKILL, the OOM killer), the supervised app dies with it, so a new
 * sidecar can bind the app's port at once. Two guards, one test each: the
 * kernel's parent-death signal through util-linux `setpriv --pdeathsig KILL`
 * (Debian has it), and where setpriv is missing (here: a PATH without it) the
 * watcher program, which notices its stdin pipe from the sidecar closing.
 * Before the fix the app kept running, reparented to init, holding its port.
 */
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnSidecar, writeConfig } from './helpers/process.ts';
import { closedPort } from './helpers/servers.ts';
import { killIfAlive, portBindable, processGone, readPidFile } from './helpers/lifecycle.ts';
import { waitFor } from './helpers/reload.ts';

const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** The app: writes its pid, then serves PORT on loopback. */
const APP = `require('node:fs').writeFileSync(process.env.PID_FILE, String(process.pid));
require('node:http').createServer((req, res) => res.end('app')).listen(Number(process.env.PORT), '127.0.0.1');`;

async function killSidecarAndCheckApp(env: NodeJS.ProcessEnv, guard: string): Promise<void> {
  const port = await closedPort();
  const file = writeConfig(`
admin: { listen: 127.0.0.1:0 }
app:
  command: [${JSON.stringify(process.execPath)}, -e, ${JSON.stringify(APP)}]
  env: { PORT: "${port}", PID_FILE: app.pid }   # in app.cwd: the config's folder
  ready: { url: "http://127.0.0.1:${port}/", timeout: 10s, interval: 50ms }
`);
  const pidFile = join(dirname(file), 'app.pid');
  const proc = await spawnSidecar(['--config', file], { env });
  cleanup.push(() => void proc.stop('SIGKILL'));
  const appPid = await readPidFile(pidFile);
  cleanup.push(() => killIfAlive(appPid));
  await waitFor('the app to be ready', () => (proc.lines.some((line) => line.msg === 'app ready') ? true : undefined), 10_000);
  expect(await portBindable(port, 0)).toBe(false); // the app holds it

  proc.child.kill('SIGKILL');
  await proc.exited;
  expect(await processGone(appPid)).toBe(true);
  expect(await portBindable(port)).toBe(true);
  expect(proc.lines.find((line) => line.msg === 'app started')?.guard).toBe(guard);
}

describe('the app dies with the sidecar, even when the sidecar is SIGKILLed', () => {
  it('with setpriv --pdeathsig (Linux, util-linux)', async () => {
    await killSidecarAndCheckApp({}, 'pdeathsig');
  });

  it('without setpriv: the watcher kills the app when its pipe from the sidecar closes', async () => {
    // Nothing on PATH: the sidecar and the app are started by absolute path.
    await killSidecarAndCheckApp({ PATH: '/nonexistent' }, 'watcher');
  });
});
