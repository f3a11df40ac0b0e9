/**
 * The supervised app: started by the sidecar with the proxy variables
 * injected, watched until ready, restarted per `restart`, and stopped with
 * SIGTERM then SIGKILL. The two live and die together: with `restart: never`
 * the app's exit ends the sidecar with the app's exit code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { isIP } from 'node:net';
import type { AppConfig } from '../config/schema.ts';
import { parseListen } from '../config/units.ts';
import { canonicalIp } from '../net/address.ts';
import { log } from '../observe/log.ts';
import { appRestartsTotal, appUp } from '../observe/metrics.ts';
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

export class AppSupervisor {
  readonly #config: AppConfig;
  readonly #env: NodeJS.ProcessEnv;
  readonly #onExit: (code: number) => void;
  readonly #shown: ShownApp;
  #child: ChildProcess | undefined;
  #ready = false;
  #stopping = false;
  #restartDelay = RESTART_MIN_MS;
  #startedAt = 0;
  #usage: AppUsageSampler | undefined;

  /** `onExit` is called when the app ended for good (restart: never, or after stop()). */
  constructor(config: AppConfig, env: NodeJS.ProcessEnv, onExit: (code: number) => void, shown?: ShownApp) {
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
    const child = spawn(command, args, { cwd: this.#config.cwd, env: this.#env, stdio: ['ignore', 'inherit', 'inherit'] });
    this.#child = child;
    this.#ready = false;
    log.info({ app: this.#shown.command, appPid: child.pid }, 'app started');
    // Not the error itself: its spawnargs and path would repeat the command as written.
    child.once('error', (err: NodeJS.ErrnoException) =>
      log.error({ code: err.code, app: this.#shown.command }, `app could not be started: ${this.#shown.text(err.message)}`),
    );
    child.once('exit', (code, signal) => this.#exited(child, code, signal));
    this.#usage?.stop();
    if (child.pid !== undefined) this.#usage = new AppUsageSampler(child.pid);
    void this.#waitReady(child);
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
    if (this.#child === child && child.exitCode === null) {
      log.error({ url: this.#shown.readyUrl, timeoutMs: ready.timeout }, 'app did not become ready in time; still waiting for it');
    }
  }

  #markReady(child: ChildProcess): void {
    if (this.#child !== child) return;
    this.#ready = true;
    appUp.set(1);
    log.info({ appPid: child.pid }, 'app ready');
  }

  #exited(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#child !== child) return;
    this.#ready = false;
    appUp.set(0);
    this.#usage?.stop();
    const exitCode = code ?? (signal ? 128 + (signalNumber(signal) ?? 15) : 1);
    log.warn({ appPid: child.pid, code, signal }, 'app exited');
    const restart = this.#config.restart;
    if (this.#stopping || restart === 'never' || (restart === 'on-failure' && exitCode === 0)) {
      this.#child = undefined;
      this.#onExit(exitCode);
      return;
    }
    if (Date.now() - this.#startedAt > STABLE_AFTER_MS) this.#restartDelay = RESTART_MIN_MS;
    const delay = this.#restartDelay;
    this.#restartDelay = Math.min(this.#restartDelay * 2, RESTART_MAX_MS);
    appRestartsTotal.inc();
    log.info({ delayMs: delay }, 'restarting app');
    setTimeout(() => {
      if (!this.#stopping) this.start();
    }, delay);
  }

  /** SIGTERM, then SIGKILL after stopTimeout; resolves when the app is gone. */
  async stop(): Promise<void> {
    this.#stopping = true;
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), this.#config.stopTimeout);
    await gone;
    clearTimeout(timer);
  }
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15, SIGSEGV: 11, SIGABRT: 6 };
  return numbers[signal];
}
