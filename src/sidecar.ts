/**
 * The sidecar process as one object: it owns the config store, the upstream
 * registry, the listeners and the supervised app, starts them in order and
 * stops them gracefully. The CLI and the tests drive it through this class.
 */
import { compile, type Snapshot } from './config/compile.ts';
import { formatConfigError, loadConfigFile } from './config/load.ts';
import { ConfigStore } from './config/store.ts';
import { ConfigWatcher } from './config/watch.ts';
import { prepareRebind, type ListenerChange } from './net/rebind.ts';
import { createAdminListener, type ReloadResult } from './admin/server.ts';
import { AppSupervisor, appEnvironment, type AppExitHandler } from './app/supervisor.ts';
import { IngressServer } from './ingress/server.ts';
import { EgressServer } from './egress/server.ts';
import type { OwnAddress } from './egress/policy.ts';
import type { Listener } from './net/listener.ts';
import { UpstreamRegistry, type DiscoveredSets, type Unhealthy } from './upstream/registry.ts';
import { PolicyState } from './policy/state.ts';
import { exposureWarnings } from './admin/exposure.ts';
import { configLastReloadSuccess, configReloadsTotal } from './observe/metrics.ts';
import { log, setLogLevel } from './observe/log.ts';
import { parseListen } from './config/units.ts';
import type { Secrets } from './config/secrets.ts';
import { ListenerTls, type PreparedTls } from './tls/listener-tls.ts';
import { countTlsReloadFailures } from './tls/check.ts';
import { registry as metricsRegistry } from './observe/metrics.ts';
import type { MetricsJson } from './cluster/merge.ts';
import { StatusBoard, type LastReload } from './status/board.ts';
import { recentErrors, type RecentError } from './status/recent-errors.ts';
import { spanExporter } from './tracing/exporter.ts';

/**
 * `single`: one process does everything. With `workers` > 1 (node:cluster) the
 * `primary` keeps the admin port, the app and the config watcher, and each
 * `worker` serves ingress and egress on SO_REUSEPORT listeners.
 */
export type SidecarRole = 'single' | 'primary' | 'worker';

/** What a cluster primary asks of its workers (src/cluster/primary.ts). */
export interface ClusterHooks {
  /** Every worker is up and listening. */
  ready(): boolean;
  /** Makes every worker reload the file; called after the primary validated it, before it swaps. */
  reloadWorkers(): Promise<ReloadResult>;
  metricsText(): Promise<string>;
  /** Every process's metrics merged, as prom-client's JSON (the status page). */
  metricsJson(): Promise<MetricsJson>;
  upstreamsView(): Promise<unknown>;
  certsView(): Promise<unknown>;
  /** Every process's recent error answers, newest first (the status page). */
  recentErrors(): Promise<RecentError[]>;
  /**
   * Tells every worker this process's own listeners (the admin port) and every
   * worker's: addresses egress must refuse as loops. Resolves once each has them.
   */
  shareOwnAddresses(own: readonly OwnAddress[]): Promise<void>;
  /** Passes the verdicts of the active health checks (run in the primary only) on to every worker. */
  shareHealth(unhealthy: readonly Unhealthy[]): void;
  /** Passes the endpoints DNS discovery found (it runs in the primary only) on to every worker. */
  shareDiscovered(sets: DiscoveredSets): void;
  /** Drains and ends every worker. */
  stop(deadlineMs: number): Promise<void>;
}

export interface SidecarOptions {
  /** Overrides app.command (`npm start -- --config F -- CMD ARGS`). */
  readonly appCommand?: readonly string[];
  /**
   * Called once the supervised app has ended for good by itself (restart:
   * never): its exit code, and why when it did not simply exit (it could not
   * be started, or did not become ready in time).
   */
  readonly onAppExit?: AppExitHandler;
  readonly role?: SidecarRole;
  /** For a primary. */
  readonly cluster?: ClusterHooks;
  /** For a worker: the app's readiness, as its primary reports it. */
  readonly appReady?: () => boolean;
  /** For a worker: the endpoints its primary's health checks hold unhealthy when it was forked. */
  readonly unhealthy?: readonly Unhealthy[];
  /** For a worker: the endpoints its primary's DNS discovery had found when it was forked. */
  readonly discovered?: DiscoveredSets;
  /** How often the status page reads the counters (default status/board.ts INTERVAL_MS; tests go faster). */
  readonly statusIntervalMs?: number;
}

export class Sidecar {
  readonly store: ConfigStore;
  readonly registry: UpstreamRegistry;
  /** Policy state kept across reloads (rate limit buckets). */
  readonly policies = new PolicyState();
  #ingress: IngressServer | undefined;
  /** The ingress listener's certificates, with `ingress.tls`. */
  #ingressTls: ListenerTls | undefined;
  #egress: EgressServer | undefined;
  #admin: Listener | undefined;
  #app: AppSupervisor | undefined;
  #listening = false;
  #own: OwnAddress[] | undefined;
  /** For a worker: the admin listener and the other workers' listeners, as its primary reports them. */
  #peers: readonly OwnAddress[] = [];
  #draining = false;
  #watcher: ConfigWatcher | undefined;
  #status: StatusBoard | undefined;
  /** The outcome of the last reload, for the status page. */
  #lastReload: LastReload | undefined;
  /** Reloads run one after the other (watcher, SIGHUP and POST /reload may coincide). */
  #reloads: Promise<unknown> = Promise.resolve();
  readonly #options: SidecarOptions;

  constructor(initial: Snapshot, options: SidecarOptions = {}) {
    this.store = new ConfigStore(initial);
    this.#options = options;
    const role = options.role ?? 'single';
    const cluster = options.cluster;
    // With workers, the primary probes the endpoints once for all and the workers follow its verdicts.
    this.registry = new UpstreamRegistry({
      breakers: role !== 'primary',
      health: role === 'worker' ? 'follow' : 'probe',
      onHealthChange: cluster ? () => cluster.shareHealth(this.registry.unhealthy()) : undefined,
      // Likewise the primary resolves discovered upstreams once for all, and the workers route to what it found.
      discovery: role === 'worker' ? 'follow' : 'resolve',
      onDiscoveryChange: cluster ? () => cluster.shareDiscovered(this.registry.discovered()) : undefined,
    });
    if (options.unhealthy) this.registry.follow(options.unhealthy);
    if (options.discovered) this.registry.followDiscovered(options.discovered);
  }

  /** Readiness: listeners bound, the app (if any) ready, not draining (and, for a primary, every worker up). */
  ready(): boolean {
    return this.#listening && !this.#draining && this.appReady && (this.#options.cluster?.ready() ?? true);
  }

  /** The supervised app is ready, or there is none (an app not started yet is not ready). */
  get appReady(): boolean {
    if (this.#app) return this.#app.ready;
    if (this.#role !== 'worker' && (this.#options.appCommand ?? this.store.current().config.app)) return false;
    return this.#options.appReady?.() ?? true;
  }

  get #role(): SidecarRole {
    return this.#options.role ?? 'single';
  }

  get ingressPort(): number | undefined {
    return this.#ingress?.listener.port;
  }

  get egressPort(): number | undefined {
    return this.#egress?.listener.port;
  }

  get adminPort(): number | undefined {
    return this.#admin?.port;
  }

  async start(): Promise<void> {
    const snapshot = this.store.current();
    setLogLevel(snapshot.config.log.level);
    this.registry.reconcile(snapshot.upstreams, snapshot.secrets);
    this.store.onSwap((next) => this.registry.reconcile(next.upstreams, next.secrets));
    this.store.onSwap((next) => this.policies.retain(next));
    spanExporter.configure(snapshot.tracing);
    this.store.onSwap((next) => spanExporter.configure(next.tracing));

    const appConfig = snapshot.config.app;
    const appCommand = this.#role === 'worker' ? undefined : (this.#options.appCommand ?? appConfig?.command);
    if (appCommand && appConfig === undefined) {
      // `-- CMD` without an app block: supervise with the defaults, in the folder the user typed
      // the command in (`npm start` runs in the package's folder and says where the user was in INIT_CWD).
      const cwd = process.env.INIT_CWD ?? process.cwd();
      this.#app = this.#createApp({ command: [...appCommand], cwd, env: {}, restart: 'never', stopTimeout: 10_000 }, snapshot);
    } else if (appConfig && appCommand) {
      this.#app = this.#createApp({ ...appConfig, command: [...appCommand] }, snapshot);
    }

    const serves = this.#role !== 'primary';
    if (snapshot.ingress && serves) {
      const { settings, tls } = snapshot.ingress;
      if (tls) {
        const accessLog = () => this.store.current().config.log.access;
        this.#ingressTls = new ListenerTls('ingress', { tls, headersTimeout: settings.headersTimeout }, { accessLog });
        await this.#ingressTls.watch();
      }
      this.#ingress = new IngressServer({ store: this.store, registry: this.registry, appReady: () => this.appReady, tls: this.#ingressTls, policies: this.policies }, settings);
      this.#ingress.listener.reusePort = this.#role === 'worker';
      await bind(this.#ingress.listener, snapshot.ingress.settings.listen, snapshot.secrets);
    }
    if (snapshot.egress && serves) {
      this.#egress = new EgressServer(
        { store: this.store, registry: this.registry, ownAddresses: () => this.#ownAddresses(), policies: this.policies },
        snapshot.egress.settings,
      );
      this.#egress.listener.reusePort = this.#role === 'worker';
      await bind(this.#egress.listener, snapshot.egress.settings.listen, snapshot.secrets);
    }
    if (this.#role !== 'worker') {
      const cluster = this.#options.cluster;
      const upstreamsView = cluster ? () => cluster.upstreamsView() : async () => this.upstreamsView();
      const certsView = cluster ? () => cluster.certsView() : async () => this.certificatesView();
      this.#status = new StatusBoard({
        store: this.store,
        metrics: cluster ? () => cluster.metricsJson() : () => metricsRegistry.getMetricsAsJSON(),
        upstreams: upstreamsView,
        recentErrors: cluster ? () => cluster.recentErrors() : async () => recentErrors(),
        certificates: certsView,
        lastReload: () => this.#lastReload,
        hasApp: () => this.#app !== undefined,
        boundPort: (listener) => (listener === 'ingress' ? this.ingressPort : this.egressPort),
        intervalMs: this.#options.statusIntervalMs,
      });
      this.#admin = createAdminListener({
        store: this.store,
        registry: this.registry,
        ready: () => this.ready(),
        reload: () => this.reload(),
        upstreamsView,
        certsView,
        metricsText: cluster ? () => cluster.metricsText() : undefined,
        status: this.#status,
      });
      await bind(this.#admin, snapshot.config.admin.listen, snapshot.secrets);
    }
    this.#listening = true;
    this.#status?.start();
    // Before 'sidecar listening': once that is logged, every worker refuses the admin port as a loop.
    await this.#options.cluster?.shareOwnAddresses(this.localAddresses());
    configReloadsTotal.inc({ result: 'success' }, 0);
    configReloadsTotal.inc({ result: 'failure' }, 0);
    configLastReloadSuccess.set(snapshot.loadedAt.getTime() / 1000);
    // Once per sidecar (a worker's primary says it), and before the line that says it is up.
    if (this.#role !== 'worker') for (const { message, ...fields } of exposureWarnings(snapshot)) log.warn(fields, message);
    const shown = (key: 'ingress' | 'egress' | 'admin', listen: string | undefined) => listen && snapshot.secrets.shown([key, 'listen'], listen);
    log.info(
      {
        ingress: shown('ingress', snapshot.ingress?.settings.listen),
        ingressPort: this.ingressPort,
        egress: shown('egress', snapshot.egress?.settings.listen),
        egressPort: this.egressPort,
        admin: shown('admin', snapshot.config.admin.listen),
        adminPort: this.adminPort,
        source: snapshot.source,
        hash: snapshot.hash,
      },
      'sidecar listening',
    );
    if (this.#role !== 'worker') {
      // A worker reloads when its primary says so: one watcher per sidecar.
      this.#watcher = new ConfigWatcher({ file: snapshot.source, hash: snapshot.hash, onChange: () => this.reload() });
      this.store.onSwap((next) => this.#watcher?.seen(next.hash));
      await this.#watcher.start();
    }
    this.#app?.start();
  }

  /**
   * Where egress must never send a request (a loop): the listeners of this
   * process, and for a worker also the admin listener (the configured one at
   * once, the bound one as the primary reports it) and the other workers'
   * listeners. Kept once every listener is bound, since server.address() is a
   * getsockname() call per listener and per egress request; a rebind or new
   * peers clear it.
   */
  #ownAddresses(): OwnAddress[] {
    if (this.#own) return this.#own;
    const own = [...this.localAddresses(), ...this.#peers];
    if (this.#role === 'worker') {
      // The admin port is bound by the primary: known from the config before the primary says where it is bound.
      const admin = parseListen(this.store.current().config.admin.listen);
      if (admin && admin.port !== 0) own.push({ address: admin.host, port: admin.port });
    }
    if (this.#listening) this.#own = own;
    return own;
  }

  /** The listeners bound in this process now (what a worker reports to its primary). */
  localAddresses(): OwnAddress[] {
    const own: OwnAddress[] = [];
    for (const listener of [this.#ingress?.listener, this.#egress?.listener, this.#admin]) {
      const address = listener?.address();
      if (address) own.push({ address: address.address, port: address.port });
    }
    return own;
  }

  /** For a worker: the admin listener and every worker's listeners, from the primary. */
  setPeerAddresses(addresses: readonly OwnAddress[]): void {
    this.#peers = addresses;
    this.#own = undefined;
  }

  #createApp(config: NonNullable<Snapshot['config']['app']>, snapshot: Snapshot): AppSupervisor {
    const env = appEnvironment(config, snapshot.config.egress?.listen, process.env);
    const secrets = snapshot.secrets;
    const shown = {
      // `-- CMD ARGS` typed on the command line replaces app.command: nothing in it came from the config.
      command: this.#options.appCommand ?? config.command.map((arg, index) => String(secrets.shown(['app', 'command', index], arg))),
      readyUrl: config.ready && String(secrets.shown(['app', 'ready', 'url'], config.ready.url)),
      text: (text: string) => secrets.text(text),
    };
    return new AppSupervisor(config, env, (code, reason) => this.#options.onAppExit?.(code, reason), shown);
  }

  /**
   * Re-reads the config file; swaps it in only when it is valid whole and
   * every changed `listen` address could be bound. One reload at a time.
   */
  reload(): Promise<ReloadResult> {
    const run = this.#reloads.then(() => this.#reload()).then((result) => {
      this.#lastReload = { ok: result.ok, at: new Date(), hash: result.hash, errors: result.errors };
      return result;
    });
    this.#reloads = run.catch(() => undefined);
    return run;
  }

  async #reload(): Promise<ReloadResult> {
    const current = this.store.current();
    if (this.#draining) return { ok: false, errors: ['the sidecar is shutting down'] };
    const result = await loadConfigFile(current.source);
    if (!result.ok) {
      countTlsReloadFailures(result.errors);
      return refuse(current.source, result.errors.map(formatConfigError));
    }
    for (const warning of result.warnings) log.warn({ source: current.source }, `config: ${formatConfigError(warning)}`);
    let next: Snapshot;
    try {
      next = compile(result);
    } catch (err) {
      return refuse(current.source, [result.secrets.text(`internal error while compiling the config: ${(err as Error).message}`)]);
    }
    const tls = this.#prepareTls(next);
    if (!tls.ok) return refuse(current.source, tls.errors.map((error) => next.secrets.text(error)));
    const rebind = await prepareRebind(this.#listenerChanges(current, next));
    // A listen address in these errors may have come from ${VAR}.
    if (!rebind.ok) {
      tls.abort();
      return refuse(current.source, rebind.errors.map((error) => next.secrets.text(error)));
    }
    if (this.#options.cluster) {
      const workers = await this.#options.cluster.reloadWorkers();
      if (!workers.ok) {
        tls.abort();
        await rebind.abort();
        return refuse(current.source, workers.errors ?? ['a worker refused the reload']);
      }
    }
    if (this.#draining) {
      // stop() began while the new addresses were being bound: nobody would ever close them.
      tls.abort();
      await rebind.abort();
      return { ok: false, errors: ['the sidecar is shutting down'] };
    }
    this.store.swap(next);
    tls.commit();
    rebind.commit();
    this.#own = undefined;
    setLogLevel(next.config.log.level);
    configReloadsTotal.inc({ result: 'success' });
    configLastReloadSuccess.set(next.loadedAt.getTime() / 1000);
    log.info({ hash: next.hash }, 'config reloaded');
    // The admin port may have moved: the workers know before the reload is answered.
    await this.#options.cluster?.shareOwnAddresses(this.localAddresses());
    return { ok: true, hash: next.hash };
  }

  /**
   * The new config's ingress certificates, read and checked before anything
   * changes. A listener cannot turn from HTTP to HTTPS or back in place: that
   * needs a restart, as adding a listener does.
   */
  #prepareTls(next: Snapshot): PreparedTls {
    if (!this.#ingress) return { ok: true, commit: () => undefined, abort: () => undefined };
    const tls = next.ingress?.tls;
    if ((tls === undefined) !== (this.#ingressTls === undefined)) {
      const change = tls ? 'adding ingress.tls' : 'removing ingress.tls';
      return { ok: false, errors: [`ingress.tls: ${change} needs a restart (the listener would change between HTTP and HTTPS)`] };
    }
    // A plain listener tells h2c from HTTP/1.1 by a front that sees each connection first: made at bind time.
    const h2cOf = (snapshot: Snapshot | undefined) => (snapshot?.ingress?.settings as { h2c?: boolean } | undefined)?.h2c ?? false;
    const h2c = h2cOf(this.store.current());
    if (!tls && h2cOf(next) !== h2c) {
      return { ok: false, errors: [`ingress.h2c: turning h2c ${h2c ? 'off' : 'on'} needs a restart`] };
    }
    if (!tls || !this.#ingressTls) return { ok: true, commit: () => undefined, abort: () => undefined };
    return this.#ingressTls.prepare({ tls, headersTimeout: next.ingress!.settings.headersTimeout });
  }

  /** Every certificate this process has loaded, for GET /certs: the listener's and the upstreams' client certificates and CAs. */
  certificatesView(): { certificates: unknown[] } {
    return { certificates: [...(this.#ingressTls?.certificates() ?? []), ...this.registry.certificates()] };
  }

  /** Each listener with its address in the running and in the new config. */
  #listenerChanges(current: Snapshot, next: Snapshot): ListenerChange[] {
    return [
      { key: 'ingress', listener: this.#ingress?.listener, from: current.ingress?.settings.listen, to: next.ingress?.settings.listen, limits: next.ingress?.settings },
      { key: 'egress', listener: this.#egress?.listener, from: current.egress?.settings.listen, to: next.egress?.settings.listen, limits: next.egress?.settings },
      { key: 'admin', listener: this.#admin, from: current.config.admin.listen, to: next.config.admin.listen },
    ];
  }

  upstreamsView(): unknown {
    const upstreams: Record<string, unknown> = {};
    for (const state of this.registry.all()) {
      upstreams[state.name] = state.view(); // breaker, health and ejection state live in the registry
    }
    return { upstreams };
  }

  /**
   * Stops accepting, drains in-flight work up to the deadline (`drainTimeout`
   * of the live config unless given), stops the app, closes pools.
   */
  async stop(deadlineMs = this.store.current().config.drainTimeout): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    log.info({ deadlineMs }, 'draining');
    this.#watcher?.close();
    this.#status?.stop();
    // The app stops only once nothing is in flight towards it.
    await Promise.all([this.#ingress?.close(deadlineMs), this.#egress?.close(deadlineMs), this.#options.cluster?.stop(deadlineMs)]);
    this.#ingressTls?.close();
    await this.#app?.stop();
    await this.#admin?.close(1_000);
    // The spans of the drained requests still go out, within a second.
    await spanExporter.shutdown(1_000);
    await Promise.race([this.registry.close(), new Promise((resolve) => setTimeout(resolve, 1_000))]);
    await this.registry.destroy();
    this.policies.close();
    log.info('stopped');
  }
}

/** A reload that changes nothing: counted, every error logged with the file it came from. */
function refuse(source: string, errors: readonly string[]): ReloadResult {
  configReloadsTotal.inc({ result: 'failure' });
  for (const error of errors) log.error({ source }, `config reload refused: ${error}`);
  return { ok: false, errors };
}

/** The error names the address as `secrets` allows (it may have come from `${VAR}`). */
async function bind(listener: Listener, address: string, secrets: Secrets): Promise<void> {
  const { host, port } = parseListen(address)!;
  try {
    await listener.listen(host, port);
  } catch (err) {
    const code = (err as { code?: string }).code;
    const shown = secrets.shown([listener.name, 'listen'], address);
    const why = code === 'EADDRINUSE' ? 'address already in use' : secrets.text((err as Error).message);
    // No `cause`: a logged error prints its cause's message, and Node's names the address as written.
    throw new Error(`cannot listen on ${shown} (${listener.name}): ${why}`);
  }
}
