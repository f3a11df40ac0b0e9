/**
 * Child processes of the benchmark: every process is started here, in its own
 * process group (so NGINX workers and Squid helpers die with their parent),
 * optionally pinned to a CPU with taskset, and killed when the harness exits,
 * on Ctrl-C and on error alike.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';

/** The node binary of the project (Node 24), never the system one. */
export const NODE = process.execPath;

/** A started child and where its output goes. */
export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** File that receives stdout and stderr (or both, see start options). */
  readonly logFile: string;
  /** Set once the process has exited: its code or signal. */
  exit?: string;
}

const live = new Set<Proc>();
let tasksetChecked: boolean | undefined;

/** Whether `taskset` exists and works here (pinning is best effort). */
export function hasTaskset(): boolean {
  if (tasksetChecked === undefined) {
    const probe = spawnSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' });
    tasksetChecked = probe.status === 0;
  }
  return tasksetChecked;
}

export interface StartOptions {
  /** CPU list for taskset, e.g. "0"; ignored when taskset is missing. */
  cpu?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** stdout goes here; defaults to logFile. Use "/dev/null" for chatty loggers. */
  stdoutFile?: string;
}

/** Starts `cmd args` with stdout/stderr appended to `logFile` and registers it for cleanup. */
export function start(name: string, cmd: string, args: readonly string[], logFile: string, options: StartOptions = {}): Proc {
  const pinned = options.cpu !== undefined && hasTaskset();
  const file = pinned ? 'taskset' : cmd;
  const argv = pinned ? ['-c', options.cpu as string, cmd, ...args] : [...args];
  // O_APPEND: the harness may truncate the file between runs without leaving holes.
  const errFd = openSync(logFile, 'a');
  const outFd = options.stdoutFile === undefined ? errFd : openSync(options.stdoutFile, 'a');
  const child = spawn(file, argv, {
    stdio: ['ignore', outFd, errFd],
    detached: true,
    env: options.env ?? process.env,
    cwd: options.cwd,
  });
  closeSync(errFd);
  if (outFd !== errFd) closeSync(outFd);
  const proc: Proc = { name, child, pid: child.pid ?? -1, logFile };
  live.add(proc);
  child.on('error', (err) => {
    proc.exit = `spawn error: ${err.message}`;
    live.delete(proc);
  });
  child.on('exit', (code, signal) => {
    proc.exit = signal ? `signal ${signal}` : `exit code ${code}`;
    live.delete(proc);
  });
  return proc;
}

function signalGroup(proc: Proc, signal: NodeJS.Signals): void {
  if (proc.pid <= 0) return;
  try {
    process.kill(-proc.pid, signal);
  } catch {
    try {
      process.kill(proc.pid, signal);
    } catch {
      // already gone
    }
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stop(proc: Proc, graceMs = 2000): Promise<void> {
  if (proc.exit !== undefined) return;
  const gone = new Promise<void>((resolve) => proc.child.once('exit', () => resolve()));
  signalGroup(proc, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(proc, 'SIGKILL'), graceMs);
  await Promise.race([gone, new Promise((r) => setTimeout(r, graceMs + 1000))]);
  clearTimeout(timer);
  signalGroup(proc, 'SIGKILL');
  live.delete(proc);
}

/** Stops every process still running. */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => stop(p)));
}

const exitHooks: (() => void)[] = [];

/** Synchronous work to do on any exit, after the children are killed (e.g. removing the temp dir). */
export function onExit(hook: () => void): void {
  exitHooks.push(hook);
}

/** Synchronous last resort (process 'exit'): SIGKILL every group, then run the exit hooks. */
function killAllNow(): void {
  for (const proc of live) signalGroup(proc, 'SIGKILL');
  live.clear();
  for (const hook of exitHooks.splice(0)) {
    try {
      hook();
    } catch {
      // best effort at exit
    }
  }
}

let installed = false;
/** Kill all children on exit, Ctrl-C, SIGTERM and uncaught errors. */
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping ${live.size} process(es)\n`);
      killAllNow();
      process.exit(130);
    });
  }
  process.on('uncaughtException', (err) => {
    process.stderr.write(`bench: ${err.stack ?? String(err)}\n`);
    killAllNow();
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    process.stderr.write(`bench: unhandled rejection: ${err instanceof Error ? err.stack : String(err)}\n`);
    killAllNow();
    process.exit(1);
  });
}

/** Runs a harness's main: exits with its code, or says why it failed (prefixed with `name`) after stopping every child. */
export function runMain(name: string, main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    async (err: unknown) => {
      process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
      await stopAll();
      process.exit(1);
    },
  );
}

/** The last `lines` lines of a log file, for skip reasons. */
export function tail(file: string, lines = 8): string {
  try {
    const text = readFileSync(file, 'utf8').trimEnd();
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Children of `pid` from the children files of its tasks (no scan of all of /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const task of tasks) {
    try {
      for (const child of readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ')) {
        if (child.trim()) out.push(Number(child));
      }
    } catch {
      // raced with an exit, or no CONFIG_PROC_CHILDREN: the parent alone is counted
    }
  }
  return out;
}

/** Sum of `read(pid)` over `pid` and all its descendants; a process that exits meanwhile counts 0. */
function sumOverTree(pid: number, read: (pid: number) => number): number {
  let total = 0;
  const stack = [pid];
  while (stack.length > 0) {
    const current = stack.pop() as number;
    try {
      total += read(current);
    } catch {
      // raced with an exit
    }
    stack.push(...childrenOf(current));
  }
  return total;
}

/** Resident memory (bytes) of `pid` and all its descendants, from /proc; 0 when unknown. */
export function treeRss(pid: number): number {
  return sumOverTree(pid, (current) => {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${current}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  });
}

/** Clock ticks per second of /proc/PID/stat times (USER_HZ: 100 on Linux whatever the kernel's HZ). */
const USER_HZ = 100;

/**
 * CPU time (user + system, seconds) used so far by `pid` and its live
 * children, from /proc/PID/stat. Its change over a run, divided by the work
 * done, is the CPU cost per request: steadier than req/s when the proxy is
 * not the only thing limiting the rate.
 */
export function treeCpuSeconds(pid: number): number {
  const ticks = sumOverTree(pid, (current) => {
    const stat = readFileSync(`/proc/${current}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, utime field 14, stime field 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  });
  return ticks / USER_HZ;
}

/**
 * CPU time (user + system, seconds) of this process's children that have
 * exited and been reaped (cutime + cstime of /proc/self/stat). Its change
 * across one load run is the CPU the load generator used (a run starts and
 * reaps exactly one child: wrk, hey, h2load or a client of bench/clients).
 */
export function reapedChildrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // cutime is field 16 and cstime field 17 of stat(5), so 13 and 14 after state (field 3).
  return (Number(fields[13]) + Number(fields[14])) / USER_HZ;
}
