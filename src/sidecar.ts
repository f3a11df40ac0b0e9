/**
 * The sidecar process as one object: it owns the config store, the upstream
 * registry, the listeners and the supervised app, starts them in order and
 * stops them gracefully. The CLI and the tests drive it through this class.
 */
import { compile, type Snapshot } from './config/compile.ts';
import { formatConfigError, loadConfigFile } from './config/load.ts';
import { ConfigStore } from './config/store.ts';
import { createAdminListener, type ReloadResult } from './admin/server.ts';
import { AppSupervisor, appEnvironment } from './app/supervisor.ts';
import { IngressServer } from './ingress/server.ts';
import type { Listener } from './net/listener.ts';
import { UpstreamRegistry } from './upstream/registry.ts';
import { configLastReloadSuccess, configReloadsTotal } from './observe/metrics.ts';
import { log, setLogLevel } from './observe/log.ts';
import { parseListen } from './config/units.ts';

/** How long in-flight requests may take to finish at shutdown. */
export const DRAIN_DEADLINE_MS = 10_000;

export interface SidecarOptions {
  /** Overrides app.command (`npm start -- --config F -- CMD ARGS`). */
  readonly appCommand?: readonly string[];
  /** Called once the supervised app has ended for good (restart: never). */
  readonly onAppExit?: (code: number) => void;
}

export class Sidecar {
  readonly store: ConfigStore;
  readonly registry = new UpstreamRegistry();
  #ingress: IngressServer | undefined;
  #admin: Listener | undefined;
  #app: AppSupervisor | undefined;
  #listening = false;
  #draining = false;
  readonly #options: SidecarOptions;

  constructor(initial: Snapshot, options: SidecarOptions = {}) {
    this.store = new ConfigStore(initial);
    this.#options = options;
  }

  /** Readiness: listeners bound, the app (if any) ready, not draining. */
  ready(): boolean {
    return this.#listening && !this.#draining && (this.#app?.ready ?? true);
  }

  get ingressPort(): number | undefined {
    return this.#ingress?.listener.port;
  }

  get adminPort(): number | undefined {
    return this.#admin?.port;
  }

  async start(): Promise<void> {
    const snapshot = this.store.current();
    setLogLevel(snapshot.config.log.level);
    this.registry.reconcile(snapshot.upstreams);
    this.store.onSwap((next) => this.registry.reconcile(next.upstreams));

    const appConfig = snapshot.config.app;
    const appCommand = this.#options.appCommand ?? appConfig?.command;
    if (appCommand && appConfig === undefined) {
      // `-- CMD` without an app block: supervise with the defaults.
      this.#app = this.#createApp({ command: [...appCommand], cwd: process.cwd(), env: {}, restart: 'never', stopTimeout: 10_000 }, snapshot);
    } else if (appConfig && appCommand) {
      this.#app = this.#createApp({ ...appConfig, command: [...appCommand] }, snapshot);
    }

    if (snapshot.ingress) {
      this.#ingress = new IngressServer(
        { store: this.store, registry: this.registry, appReady: () => this.#app?.ready ?? true },
        snapshot.ingress.settings,
      );
      await bind(this.#ingress.listener, snapshot.ingress.settings.listen);
    }
    this.#admin = createAdminListener({
      store: this.store,
      registry: this.registry,
      ready: () => this.ready(),
      reload: () => this.reload(),
      upstreamsView: () => this.upstreamsView(),
    });
    await bind(this.#admin, snapshot.config.admin.listen);
    this.#listening = true;
    configReloadsTotal.inc({ result: 'success' }, 0);
    configReloadsTotal.inc({ result: 'failure' }, 0);
    configLastReloadSuccess.set(snapshot.loadedAt.getTime() / 1000);
    log.info(
      {
        ingress: snapshot.ingress?.settings.listen,
        ingressPort: this.ingressPort,
        admin: snapshot.config.admin.listen,
        adminPort: this.adminPort,
        source: snapshot.source,
        hash: snapshot.hash,
      },
      'sidecar listening',
    );
    this.#app?.start();
  }

  #createApp(config: NonNullable<Snapshot['config']['app']>, snapshot: Snapshot): AppSupervisor {
    const env = appEnvironment(config, snapshot.config.egress?.listen, process.env);
    return new AppSupervisor(config, env, (code) => this.#options.onAppExit?.(code));
  }

  /** Re-reads the config file; swaps it in only when it is valid whole. */
  async reload(): Promise<ReloadResult> {
    const current = this.store.current();
    const result = await loadConfigFile(current.source);
    if (!result.ok) {
      const errors = result.errors.map(formatConfigError);
      configReloadsTotal.inc({ result: 'failure' });
      for (const error of errors) log.error({ source: current.source }, `config reload refused: ${error}`);
      return { ok: false, errors };
    }
    const next = compile(result.config, { hash: result.hash, source: current.source, loadedAt: result.loadedAt });
    this.store.swap(next);
    setLogLevel(next.config.log.level);
    configReloadsTotal.inc({ result: 'success' });
    configLastReloadSuccess.set(next.loadedAt.getTime() / 1000);
    log.info({ hash: next.hash }, 'config reloaded');
    return { ok: true, hash: next.hash };
  }

  upstreamsView(): unknown {
    const upstreams: Record<string, unknown> = {};
    for (const state of this.registry.all()) {
      upstreams[state.name] = {
        breaker: 'closed',
        endpoints: state.endpoints.map((endpoint) => ({ url: endpoint.url, healthy: true, ejected: false, inFlight: endpoint.inFlight })),
      };
    }
    return { upstreams };
  }

  /** Stops accepting, drains in-flight work up to the deadline, stops the app, closes pools. */
  async stop(deadlineMs = DRAIN_DEADLINE_MS): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    log.info({ deadlineMs }, 'draining');
    await Promise.all([this.#ingress?.close(deadlineMs)]);
    await this.#app?.stop();
    await this.#admin?.close(1_000);
    await Promise.race([this.registry.close(), new Promise((resolve) => setTimeout(resolve, 1_000))]);
    await this.registry.destroy();
    log.info('stopped');
  }
}

async function bind(listener: Listener, address: string): Promise<void> {
  const { host, port } = parseListen(address)!;
  try {
    await listener.listen(host, port);
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new Error(`cannot listen on ${address} (${listener.name}): ${code === 'EADDRINUSE' ? 'address already in use' : (err as Error).message}`, { cause: err });
  }
}
