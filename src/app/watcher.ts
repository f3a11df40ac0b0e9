/**
 * `node watcher.ts CMD ARGS...`: the supervised app's guard where setpriv
 * (Linux's PR_SET_PDEATHSIG) is not available (see launch.ts). The sidecar
 * starts this program as the leader of a new process group, with a pipe on
 * its stdin that only the sidecar holds open. It starts CMD in the same group
 * and:
 *
 * - when the pipe closes (the sidecar is gone, however it died) kills the
 *   whole group with SIGKILL, as the kernel would with pdeathsig;
 * - ignores SIGTERM, SIGINT and SIGHUP: the sidecar signals the whole group,
 *   so the app gets them itself and decides; this program waits for it;
 * - ends as the app ended (same exit code, or killed by the same signal), or
 *   with 127 / 126, like a shell, when CMD cannot be started.
 */
import { spawn } from 'node:child_process';

const [command, ...args] = process.argv.slice(2);
if (!command) {
  process.stderr.write('sidecar watcher: no command given\n');
  process.exit(2);
}

for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => undefined);

const app = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });

app.once('error', (err: NodeJS.ErrnoException) => {
  process.stderr.write(`sidecar: cannot start the app: ${command}: ${err.message}\n`);
  process.exit(err.code === 'ENOENT' ? 127 : 126);
});

app.once('exit', (code, signal) => {
  if (signal === null) process.exit(code ?? 1);
  // Die of the same signal, so the sidecar sees what the app saw.
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
});

const killGroup = (): void => {
  try {
    process.kill(-process.pid, 'SIGKILL'); // the group this program leads: the app, its children, and this program
  } catch {
    app.kill('SIGKILL');
    process.exit(137);
  }
};
process.stdin.once('end', killGroup);
process.stdin.once('error', killGroup);
process.stdin.resume();
