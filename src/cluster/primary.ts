/**
 * The primary of a multi-process sidecar (`workers` > 1, node:cluster): forks
 * the workers, restarts one that dies, tells them the app's readiness, asks
 * them to reload, gathers their metrics and upstream state for the admin port,
 * tells each the addresses that egress must not reach (the admin listener,
 * every worker's listeners), and drains them at shutdown. The workers bind the proxy listeners
 * themselves with SO_REUSEPORT, so the kernel spreads connections and no byte
 * of traffic passes through this process.
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { ReloadResult } from '../admin/server.ts';
import type { ClusterHooks } from '../sidecar.ts';
import type { OwnAddress } from '../egress/policy.ts';
import { registry } from '../observe/metrics.ts';
import { log } from '../observe/log.ts';
import type { DiscoveredSets, Unhealthy } from '../upstream/registry.ts';
import { DISCOVERED_ENV, isMessage, UNHEALTHY_ENV, type ToPrimary, type ToWorker, type WorkerQuestion } from './messages.ts';
import { mergeCertificateViews, mergeUpstreamViews, oneCircuitState, type MetricsJson } from './merge.ts';
import { mergeRecentErrors, recentErrors, type RecentError } from '../status/recent-errors.ts';

/** A question unanswered this long counts as a failed answer (a hung worker must not hang the admin port). */
const ASK_TIMEOUT_MS = 5_000;
const START_TIMEOUT_MS = 20_000;
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 5_000;

interface Question {
  readonly waiting: Set<Worker>;
  readonly answers: unknown[];
  readonly done: () => void;
}

export class WorkerPool implements ClusterHooks {
  readonly #count: number;
  readonly #listening = new Set<Worker>();
  readonly #alive = new Set<Worker>();
  readonly #questions = new Map<number, Question>();
  /** The listeners each worker reported (after start, after each reload). */
  readonly #workerAddresses = new Map<Worker, readonly OwnAddress[]>();
  /** This process's own listeners (the admin port). */
  #primaryAddresses: readonly OwnAddress[] = [];
  #nextId = 1;
  #stopping = false;
  /** Until every worker first listens: a worker that dies then is a start-up failure, not restarted. */
  #starting = true;
  #appReady = false;
  /** The last verdicts of the primary's health checks, for workers forked or listening later. */
  #unhealthy: readonly Unhealthy[] = [];
  /** The last endpoints the primary's DNS discovery found, for workers forked or listening later. */
  #discovered: DiscoveredSets = {};
  #restartDelay = RESTART_MIN_MS;

  constructor(count: number) {
    this.#count = count;
  }

  /** Forks every worker; resolves once all listen, rejects when one dies first (e.g. a port in use). */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`workers did not start within ${START_TIMEOUT_MS}ms`)), START_TIMEOUT_MS);
      for (let i = 0; i < this.#count; i++) {
        const worker = this.#fork();
        worker.once('exit', (code) => {
          if (!this.#starting || this.#stopping) return;
          this.#starting = false;
          clearInterval(check);
          clearTimeout(timer);
          this.#stopping = true; // a start-up failure (a port in use, say): no restarts
          reject(new Error(`a worker exited with code ${code} while starting (see its error above)`));
        });
      }
      const check = setInterval(() => {
        if (this.#listening.size === this.#count) {
          this.#starting = false;
          clearInterval(check);
          clearTimeout(timer);
          resolve();
        }
      }, 20);
      timer.unref?.();
    });
  }

  #fork(): Worker {
    // The app's readiness and the endpoints' health as of now; later changes follow by message.
    const worker = cluster.fork({
      SIDECAR_APP_READY: this.#appReady ? '1' : '0',
      [UNHEALTHY_ENV]: JSON.stringify(this.#unhealthy),
      [DISCOVERED_ENV]: JSON.stringify(this.#discovered),
    });
    this.#alive.add(worker);
    worker.on('message', (message: unknown) => {
      if (!isMessage<ToPrimary>(message)) return;
      if (message.type === 'listening') {
        this.#listening.add(worker);
        this.#send(worker, { type: 'app-ready', ready: this.#appReady });
        this.#send(worker, { type: 'health', unhealthy: this.#unhealthy });
        this.#send(worker, { type: 'discovered', sets: this.#discovered });
        log.info({ workerPid: worker.process.pid, listening: this.#listening.size, of: this.#count }, 'worker listening');
        this.#workerAddresses.set(worker, message.addresses);
        void this.#shareAddresses();
      } else if (message.type === 'addresses') {
        this.#workerAddresses.set(worker, message.addresses);
        void this.#shareAddresses();
      } else if (message.type === 'reply') {
        this.#answered(worker, message.id, message.answer);
      }
    });
    worker.once('exit', (code, signal) => this.#exited(worker, code, signal));
    return worker;
  }

  #exited(worker: Worker, code: number | null, signal: string | null): void {
    this.#alive.delete(worker);
    this.#listening.delete(worker);
    for (const [id, question] of this.#questions) if (question.waiting.has(worker)) this.#answered(worker, id, undefined);
    const hadAddresses = this.#workerAddresses.delete(worker);
    if (this.#stopping || this.#starting) return;
    if (hadAddresses) void this.#shareAddresses();
    log.error({ workerPid: worker.process.pid, code, signal, delayMs: this.#restartDelay }, 'worker died; starting a new one');
    setTimeout(() => {
      if (!this.#stopping) this.#fork();
    }, this.#restartDelay);
    this.#restartDelay = Math.min(this.#restartDelay * 2, RESTART_MAX_MS);
  }

  #send(worker: Worker, message: ToWorker): void {
    if (worker.isConnected()) worker.send(message);
  }

  ready(): boolean {
    return this.#listening.size === this.#count;
  }

  /** Passes the app's readiness on; workers answer 503 app_not_ready until it is true. */
  setAppReady(ready: boolean): void {
    if (ready === this.#appReady) return;
    this.#appReady = ready;
    for (const worker of this.#listening) this.#send(worker, { type: 'app-ready', ready });
  }

  /** Passes the endpoints the primary's DNS discovery found on; workers route to them instead of resolving themselves. */
  shareDiscovered(sets: DiscoveredSets): void {
    this.#discovered = sets;
    for (const worker of this.#alive) this.#send(worker, { type: 'discovered', sets });
  }

  /** Passes the verdicts of the primary's health checks on; workers route by them instead of probing themselves. */
  shareHealth(unhealthy: readonly Unhealthy[]): void {
    this.#unhealthy = unhealthy;
    for (const worker of this.#alive) this.#send(worker, { type: 'health', unhealthy });
  }

  /** Asks every listening worker; resolves with the answers that came in time (undefined for the others). */
  #ask(question: WorkerQuestion, addresses?: readonly OwnAddress[]): Promise<unknown[]> {
    const id = this.#nextId++;
    const waiting = new Set(this.#listening);
    if (waiting.size === 0) return Promise.resolve([]);
    return new Promise((resolve) => {
      const answers: unknown[] = [];
      const timer = setTimeout(() => {
        for (const worker of waiting) answers.push(undefined);
        this.#questions.delete(id);
        resolve(answers);
      }, ASK_TIMEOUT_MS);
      this.#questions.set(id, {
        waiting,
        answers,
        done: () => {
          clearTimeout(timer);
          this.#questions.delete(id);
          resolve(answers);
        },
      });
      for (const worker of waiting) this.#send(worker, { type: 'ask', id, question, addresses });
    });
  }

  #answered(worker: Worker, id: number, answer: unknown): void {
    const question = this.#questions.get(id);
    if (!question || !question.waiting.delete(worker)) return;
    question.answers.push(answer);
    if (question.waiting.size === 0) question.done();
  }

  /** Records this process's own listeners and tells every worker; resolves once each has them (or did not answer in time). */
  async shareOwnAddresses(own: readonly OwnAddress[]): Promise<void> {
    this.#primaryAddresses = own;
    await this.#shareAddresses();
  }

  /**
   * Tells every listening worker the admin listener and every worker's
   * listeners. Workers share the configured ports, but not always the moment
   * they bind them (a reload rebinds one worker after the other), and the
   * admin port exists in this process only.
   */
  async #shareAddresses(): Promise<void> {
    const unique = new Map<string, OwnAddress>();
    for (const entry of [this.#primaryAddresses, ...this.#workerAddresses.values()].flat()) {
      unique.set(`${entry.address} ${entry.port}`, { address: entry.address, port: entry.port });
    }
    await this.#ask('own-addresses', [...unique.values()]);
  }

  async reloadWorkers(): Promise<ReloadResult> {
    const answers = (await this.#ask('reload')) as Array<ReloadResult | undefined>;
    const errors = new Set<string>();
    for (const answer of answers) {
      if (!answer) errors.add('a worker did not answer the reload in time');
      else if (!answer.ok) for (const error of answer.errors ?? []) errors.add(error);
    }
    return errors.size === 0 ? { ok: true } : { ok: false, errors: [...errors] };
  }

  /**
   * Every process's metrics summed (counters, in-flight gauges) or maxed
   * (states), as prom-client aggregates a cluster; the breakers' states are
   * merged first, so each upstream shows one state (merge.ts).
   */
  async metricsText(): Promise<string> {
    return (await this.#aggregated()).metrics();
  }

  /** The same merge as metricsText(), as prom-client's JSON (the status page reads it). */
  async metricsJson(): Promise<MetricsJson> {
    return (await this.#aggregated()).getMetricsAsJSON();
  }

  async #aggregated(): Promise<ReturnType<typeof AggregatorRegistry.aggregate>> {
    const fromWorkers = (await this.#ask('metrics')).filter((answer): answer is MetricsJson => Array.isArray(answer));
    return AggregatorRegistry.aggregate(oneCircuitState([...fromWorkers, await registry.getMetricsAsJSON()]));
  }

  /** The sidecar's own error answers of every worker (and of this process), newest first. */
  async recentErrors(): Promise<RecentError[]> {
    const answers = (await this.#ask('recent-errors')) as Array<RecentError[] | undefined>;
    return mergeRecentErrors([...answers, recentErrors()]);
  }

  async upstreamsView(): Promise<unknown> {
    return mergeUpstreamViews(await this.#ask('upstreams'));
  }

  async certsView(): Promise<unknown> {
    return mergeCertificateViews(await this.#ask('certs'));
  }

  /** SIGTERM to every worker (each drains up to the deadline), SIGKILL to those still there a little after it. */
  async stop(deadlineMs: number): Promise<void> {
    this.#stopping = true;
    const exits = [...this.#alive].map((worker) => new Promise<void>((resolve) => {
      if (worker.isDead()) return resolve();
      worker.once('exit', () => resolve());
      worker.process.kill('SIGTERM');
    }));
    const killer = setTimeout(() => {
      for (const worker of this.#alive) worker.process.kill('SIGKILL');
    }, deadlineMs + 2_000);
    await Promise.all(exits);
    clearTimeout(killer);
  }
}
