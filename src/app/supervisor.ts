/**
 * The supervised app: started by the sidecar with the proxy variables
 * injected, in a process group of its own and guarded so it dies with the
 * sidecar (launch.ts), watched until ready, restarted per `restart`, and
 * stopped with SIGTERM then SIGKILL to its whole group once the sidecar has
 * drained. The two live and die together: with `restart: never` the app's
 * exit (or its failure to start or to become ready) ends the sidecar.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { isIP } from 'node:net';
import { constants } from 'node:os';
import type { AppConfig } from '../config/schema.ts';
import { parseListen } from '../config/units.ts';
import { canonicalIp } from '../net/address.ts';
import { log } from '../observe/log.ts';
import { appRestartsTotal, appUp } from '../observe/metrics.ts';
import { launchFor, startProblem } from './launch.ts';
import { AppUsageSampler } from './usage.ts';

/**
 * Environment for the app: inherited < injected proxy variables < app.env (SPEC
 * "Injected proxy variables"). NODE_COMPILE_CACHE is not passed on: `npm start`
 * and the image set it for the sidecar's own start-up, and the app's modules
 * have no business in the sidecar's cache folder (app.env may set one).
 */
export function appEnvironment(config: AppConfig, egressListen: string | undefined, inherited: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...inherited };
  delete env.NODE_COMPILE_CACHE;
  const inject = config.proxyEnv ?? egressListen !== undefined;
  const proxy = egressListen === undefined ? undefined : proxyUrl(egressListen);
  if (inject && proxy) {
    const noProxy = 'localhost,127.0.0.1,::1';
    Object.assign(env, {
      HTTP_PROXY: proxy,
      HTTPS_PROXY: proxy,
      http_proxy: proxy,
      https_proxy: proxy,
      NO_PROXY: noProxy,
      no_proxy: noProxy,
      NODE_USE_ENV_PROXY: '1',
    });
  }
  return Object.assign(env, config.env);
}

/**
 * The URL the app reaches egress at. A wildcard or missing host (`0.0.0.0:P`,
 * `[::]:P`, `:P`) says where egress listens, not where to reach it: the app
 * gets 127.0.0.1, which reaches a `::` listener too (Node binds it
 * dual-stack) and which every client parses (some mishandle a bracketed IPv6
 * proxy host). An IPv6 address gets its brackets.
 */
function proxyUrl(listen: string): string | undefined {
  const address = parseListen(listen);
  if (!address) return undefined;
  const ip = canonicalIp(address.host);
  if (ip === '0.0.0.0' || ip === '::') return `http://127.0.0.1:${address.port}`;
  const host = ip === undefined ? address.host : isIP(ip) === 6 ? `[${ip}]` : ip;
  return `http://${host}:${address.port}`;
}

/** Backoff between restarts: 100ms doubling to 10s, reset after a minute of uptime. */
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 10_000;
const STABLE_AFTER_MS = 60_000;

/** How the app's config may appear in log lines: a part that came from `${VAR}`, or a URL's query, is [redacted]. */
export interface ShownApp {
  readonly command: readonly string[];
  readonly readyUrl?: string;
  /** Blanks the config's secret values in other text (an error message). */
  text(text: string): string;
}

/** Called once the app has ended for good: its exit code, and why when the app did not simply exit. */
export type AppExitHandler = (code: number, reason?: string) => void;

export class AppSupervisor {
  readonly #config: AppConfig;
  readonly #env: NodeJS.ProcessEnv;
  readonly #onExit: AppExitHandler;
  readonly #shown: ShownApp;
  #child: ChildProcess | undefined;
  #ready = false;
  #stopping = false;
  #restartDelay = RESTART_MIN_MS;
  #restartTimer: NodeJS.Timeout | undefined;
  #startedAt = 0;
  #usage: AppUsageSampler | undefined;
  /** A child being stopped because it did not become ready in time: its exit code does not count, this reason does. */
  #notReady: { readonly child: ChildProcess; readonly reason: string } | undefined;
  /** Whatever way this process ends, the app's group ends too (process.exit() skips stop()). */
  readonly #killOnExit = (): void => {
    if (this.#child) signalGroup(this.#child, 'SIGKILL');
  };

  /** `onExit` is called when the app ended for good by itself (never after stop()). */
  constructor(config: AppConfig, env: NodeJS.ProcessEnv, onExit: AppExitHandler, shown?: ShownApp) {
    this.#config = config;
    this.#env = env;
    this.#onExit = onExit;
    this.#shown = shown ?? { command: config.command, readyUrl: config.ready?.url, text: (text) => text };
  }

  get ready(): boolean {
    return this.#ready;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  start(): void {
    const [command, ...args] = this.#config.command;
    this.#startedAt = Date.now();
    this.#ready = false;
    const problem = startProblem(command, this.#config.cwd, this.#env.PATH);
    if (problem) {
      this.#cannotStart(problem.exitCode, this.#shown.text(problem.message));
      return;
    }
    const launch = launchFor([command, ...args]);
    const child = spawn(launch.file, launch.args, {
      cwd: this.#config.cwd,
      env: this.#env,
      stdio: [launch.stdin, 'inherit', 'inherit'],
      detached: true,
    });
    this.#child = child;
    if (child.pid !== undefined) process.once('exit', this.#killOnExit);
    log.info({ app: this.#shown.command, appPid: child.pid, cwd: this.#config.cwd, guard: launch.guard }, 'app started');
    // Not the error itself: its spawnargs and path would repeat the command as written.
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (this.#child !== child) return;
      if (child.pid !== undefined) {
        log.error({ code: err.code, appPid: child.pid }, `app process error: ${this.#shown.text(err.message)}`); // running: its 'exit' will follow
        return;
      }
      // Not spawned (no 'exit' will follow): the guard itself, as the app's own command was checked above.
      this.#child = undefined;
      this.#ready = false;
      appUp.set(0);
      this.#cannotStart(err.code === 'ENOENT' ? 127 : 126, `${launch.file}: ${this.#shown.text(err.message)}`);
    });
    child.once('exit', (code, signal) => this.#exited(child, code, signal));
    this.#usage?.stop();
    if (child.pid !== undefined) this.#usage = new AppUsageSampler(child.pid);
    void this.#waitReady(child);
  }

  /** The command cannot be started (127 not found, 126 not executable): an exit, as from a shell. */
  #cannotStart(exitCode: number, message: string): void {
    log.error({ app: this.#shown.command, cwd: this.#config.cwd, code: exitCode }, `app could not be started: ${message}`);
    this.#ended(exitCode, `the app could not be started: ${message} (exit code ${exitCode})`);
  }

  async #waitReady(child: ChildProcess): Promise<void> {
    const ready = this.#config.ready;
    if (!ready) {
      this.#markReady(child);
      return;
    }
    const until = Date.now() + ready.timeout;
    while (Date.now() < until && this.#child === child && child.exitCode === null) {
      try {
        const response = await fetch(ready.url, { signal: AbortSignal.timeout(Math.max(ready.interval, 1000)) });
        await response.body?.cancel();
        if (response.status < 500) {
          this.#markReady(child);
          return;
        }
      } catch {
        // Not listening yet.
      }
      await new Promise((resolve) => setTimeout(resolve, ready.interval));
    }
    if (this.#child !== child || child.exitCode !== null || this.#stopping) return;
    const never = this.#config.restart === 'never';
    const url = this.#shown.readyUrl;
    log.error({ url, timeoutMs: ready.timeout }, `app did not become ready in time; ${never ? 'stopping it and the sidecar (restart: never)' : 'restarting it'}`);
    this.#notReady = { child, reason: `the app did not become ready within ${ready.timeout / 1000} s (${url})` };
    await this.#stopChild(child);
  }

  #markReady(child: ChildProcess): void {
    if (this.#child !== child) return;
    this.#ready = true;
    appUp.set(1);
    log.info({ appPid: child.pid }, 'app ready');
  }

  #exited(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#child !== child) return;
    process.off('exit', this.#killOnExit);
    this.#child = undefined;
    this.#ready = false;
    appUp.set(0);
    this.#usage?.stop();
    // Died of signal N: 128 + N, as a shell reports it.
    const exitCode = code ?? (signal ? 128 + (constants.signals[signal] ?? 15) : 1);
    log.warn({ appPid: child.pid, code, signal }, 'app exited');
    // Stopped by the sidecar's own shutdown: its exit code is not the app's to choose.
    if (this.#stopping) return;
    const notReady = this.#notReady?.child === child ? this.#notReady.reason : undefined;
    this.#notReady = undefined;
    if (notReady === undefined) this.#ended(exitCode);
    else if (this.#config.restart === 'never') this.#onExit(1, notReady);
    else this.#restart();
  }

  /** The app is gone: restart it per `restart`, or report that it ended for good. */
  #ended(exitCode: number, reason?: string): void {
    if (this.#stopping) return;
    const restart = this.#config.restart;
    if (restart === 'never' || (restart === 'on-failure' && exitCode === 0)) {
      this.#onExit(exitCode, reason);
      return;
    }
    this.#restart();
  }

  #restart(): void {
    if (Date.now() - this.#startedAt > STABLE_AFTER_MS) this.#restartDelay = RESTART_MIN_MS;
    const delay = this.#restartDelay;
    this.#restartDelay = Math.min(this.#restartDelay * 2, RESTART_MAX_MS);
    appRestartsTotal.inc();
    log.info({ delayMs: delay }, 'restarting app');
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (!this.#stopping) this.start();
    }, delay);
  }

  /**
   * SIGTERM to the app's group, then SIGKILL after stopTimeout; resolves when
   * the app is gone. Called once the sidecar has drained, so the app never
   * loses a request in flight to it. No restart follows.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    const child = this.#child;
    if (child) await this.#stopChild(child);
  }

  /** SIGTERM to the group, SIGKILL after stopTimeout; once the app has exited, SIGKILL for whatever it left in its group. */
  async #stopChild(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    signalGroup(child, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), this.#config.stopTimeout);
    await gone;
    clearTimeout(timer);
    signalGroup(child, 'SIGKILL');
  }
}

/**
 * Signals the app's process group (it leads one: spawn `detached`), so its own
 * children get the signal too, as from a terminal; the app alone if the
 * group is already gone.
 */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // Gone already.
    }
  }
}
