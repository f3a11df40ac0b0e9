/**
 * The sidecar as a separate process (`node src/cli.ts`), for what only a real
 * process shows: exit codes, signals, memory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';

export const ROOT = resolve(import.meta.dirname, '../..');
export const CLI = join(ROOT, 'src/cli.ts');
/**
 * The Node flags the sidecar runs with, as `npm start`, the Dockerfile and the
 * `sidecar` command start it: http-proxy 1.18.1 calls util._extend on every
 * WebSocket, and that one deprecation warning (DEP0060) is not printed.
 */
export const NODE_FLAGS: readonly string[] = ['--disable-warning=DEP0060'];

export interface SidecarProcess {
  readonly child: ChildProcess;
  readonly lines: Array<Record<string, unknown>>;
  readonly stderr: () => string;
  ingressPort?: number;
  adminPort?: number;
  egressPort?: number;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** YAML header for a sidecar process whose access log a test reads: admin on an ephemeral port, access lines on stdout. */
export const LOGGED_BASE = `
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: true }
`;

/** Writes `yaml` to a temp file and returns its path. */
export function writeConfig(yaml: string, name = 'sidecar.yaml'): string {
  const dir = mkdtempSync(join(tmpdir(), 'sidecar-proc-'));
  const file = join(dir, name);
  writeFileSync(file, yaml);
  return file;
}

export interface SpawnOptions {
  waitListening?: boolean;
  env?: NodeJS.ProcessEnv;
  /**
   * Another way to start the sidecar than `node src/cli.ts` (`['npx', 'sidecar']`), run in `cwd`
   * as a process group of its own: `stop` signals the whole group (npm, a shell, the sidecar).
   */
  command?: { file: string; args: string[]; cwd: string };
  /** Where `node src/cli.ts` runs (default: the repository). */
  cwd?: string;
  /** The sidecar leads a process group of its own, as a shell's foreground job does. */
  detached?: boolean;
  /** Flags for Node itself, before the CLI (the image's ENTRYPOINT flags). */
  nodeArgs?: readonly string[];
}

/** Runs the CLI with `args`; waits for "sidecar listening" unless `waitListening` is false. */
export async function spawnSidecar(args: string[], options: SpawnOptions = {}): Promise<SidecarProcess> {
  const { file, args: before, cwd } = options.command ?? { file: process.execPath, args: [...new Set([...NODE_FLAGS, ...(options.nodeArgs ?? [])]), CLI], cwd: options.cwd ?? ROOT };
  const group = options.command !== undefined || options.detached === true;
  const env = { ...process.env, ...options.env };
  const child = spawn(file, [...before, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: group });
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  let pending = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    let newline: number;
    while ((newline = pending.indexOf('\n')) !== -1) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      try {
        lines.push(JSON.parse(line));
      } catch {
        lines.push({ raw: line });
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  const proc: SidecarProcess = {
    child,
    lines,
    stderr: () => stderr,
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) {
        if (group) killGroup(child, signal);
        else child.kill(signal);
      }
      return exited;
    },
  };
  if (options.waitListening === false) return proc;
  const until = Date.now() + 15_000;
  while (Date.now() < until && child.exitCode === null) {
    // The process's own line: with `workers` a worker logs one too, before its siblings listen.
    // (Started through another command, the sidecar is a grandchild, and the only sidecar.)
    const listening = lines.find((line) => line.msg === 'sidecar listening' && (options.command !== undefined || line.pid === child.pid));
    if (listening) {
      proc.ingressPort = listening.ingressPort as number | undefined;
      proc.adminPort = listening.adminPort as number | undefined;
      proc.egressPort = listening.egressPort as number | undefined;
      return proc;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  if (group) killGroup(child, 'SIGKILL');
  else child.kill('SIGKILL');
  throw new Error(`sidecar did not start: ${stderr}\n${JSON.stringify(lines)}`);
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // The group is gone already.
  }
}

/** Peak resident memory (VmHWM) of a process, in bytes, from /proc. */
export function peakRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmHWM:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}

/** Current resident memory (VmRSS) of a process, in bytes. */
export function currentRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}

export const MiB = 1024 * 1024;

/**
 * Growth of the sidecar's peak RSS that the memory tests accept while 100 MiB
 * flow each way, measured after a 32 MiB warm-up has grown the heap to its
 * working size (measured: it plateaus near 64 MiB above idle whatever the body
 * size, 50 MiB or 400 MiB). Buffering a body would add at least its 100 MiB.
 */
export const ALLOWED_GROWTH = 48 * MiB;

/** A body of `total` bytes produced lazily, 64 KiB at a time. */
export function lazyBody(total: number): Readable {
  const chunk = Buffer.alloc(64 * 1024, 'x');
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) return void this.push(null);
      sent += chunk.length;
      this.push(chunk);
    },
  });
}
