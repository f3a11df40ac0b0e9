/**
 * How the supervised app is started so that it never outlives the sidecar,
 * and whether its command can be started at all.
 *
 * The app runs in a process group of its own (spawn `detached`), so a Ctrl-C
 * in a terminal, which signals the whole foreground group, reaches only the
 * sidecar: the sidecar drains first and stops the app after. That same
 * separation means nothing else kills the app if the sidecar itself is
 * killed (SIGKILL, the OOM killer), hence a guard:
 *
 * - `pdeathsig` (Linux with util-linux's `setpriv`, as on Debian and the
 *   node:*-slim images): `setpriv --pdeathsig KILL -- CMD` asks the kernel to
 *   SIGKILL the app the moment the sidecar dies, then execs CMD (same pid).
 * - `watcher` (elsewhere): a small Node program (watcher.ts) starts CMD and
 *   holds a pipe from the sidecar on its stdin; when the pipe closes, however
 *   the sidecar died, it kills the app's whole group.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What ties the app's life to the sidecar's. */
export type DeathGuard = 'pdeathsig' | 'watcher';

export interface Launch {
  readonly file: string;
  readonly args: readonly string[];
  readonly guard: DeathGuard;
  /** The watcher's lifeline is a pipe on its stdin; an app started directly reads nothing. */
  readonly stdin: 'ignore' | 'pipe';
}

const WATCHER = fileURLToPath(new URL('./watcher.ts', import.meta.url));

/** `setpriv` on the sidecar's own PATH, looked up once (undefined: not Linux, or not installed). */
let setpriv: string | null | undefined = null;

function findSetpriv(): string | undefined {
  if (setpriv === null) setpriv = process.platform === 'linux' ? findOnPath('setpriv', process.env.PATH, process.cwd()).file : undefined;
  return setpriv;
}

/** The command line that runs `command` under the guard available here. */
export function launchFor(command: readonly string[]): Launch {
  const found = findSetpriv();
  if (found) return { file: found, args: ['--pdeathsig', 'KILL', '--', ...command], guard: 'pdeathsig', stdin: 'ignore' };
  return { file: process.execPath, args: [WATCHER, ...command], guard: 'watcher', stdin: 'pipe' };
}

/** Why a command cannot be started, with the exit code a shell would give: 127 not found, 126 not executable. */
export interface StartProblem {
  readonly exitCode: 126 | 127;
  readonly message: string;
}

/**
 * Checks, as execvp() would, that `name` names an executable file: a name
 * with a slash relative to `cwd`, otherwise the first match on `path` (the
 * app's PATH). Undefined when it can be started.
 */
export function startProblem(name: string, cwd: string, path: string | undefined): StartProblem | undefined {
  const found = name.includes('/') ? check(resolve(cwd, name)) : findOnPath(name, path, cwd);
  if (found.file) return undefined;
  if (found.denied) return { exitCode: 126, message: `${name}: ${found.denied}` };
  return { exitCode: 127, message: name.includes('/') ? `${name}: no such file (in ${cwd})` : `${name}: not found on PATH` };
}

interface Found {
  /** An executable regular file. */
  readonly file?: string;
  /** Why a file that exists cannot be run. */
  readonly denied?: string;
}

function findOnPath(name: string, path: string | undefined, cwd: string): Found {
  let denied: string | undefined;
  for (const dir of (path ?? '').split(delimiter)) {
    // An empty PATH entry means the current directory, as for a shell.
    const found = check(join(isAbsolute(dir) ? dir : resolve(cwd, dir), name));
    if (found.file) return found;
    denied ??= found.denied;
  }
  return { denied };
}

function check(file: string): Found {
  try {
    if (statSync(file).isDirectory()) return { denied: 'is a directory' };
    accessSync(file, constants.X_OK);
    return { file };
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EACCES' ? { denied: 'permission denied (not executable)' } : {};
  }
}
