#!/usr/bin/env -S node --disable-warning=DEP0060
/**
 * Command line (SPEC.md "Command line"):
 *   sidecar [--config PATH] [-- CMD ARGS...]   run (default config/sidecar.yaml, or $SIDECAR_CONFIG)
 *   sidecar check [--config PATH]              validate only: exit 0, or print every error and exit 1
 *   sidecar schema [--out FILE]                the JSON Schema of the config file (stdout, or FILE)
 *   sidecar --version | --help
 * Exit codes: 0 clean shutdown; 1 bad config or start-up failure; with a
 * supervised app and `restart: never`, the app's own exit code (127 / 126
 * when its command is not found / not executable, 1 when it did not become
 * ready in time); 128 + N after a second signal N cut the drain short.
 *
 * Started by `npm start`, the Dockerfile and the `sidecar` command
 * (bin/sidecar.js) with --disable-warning=DEP0060, as by this shebang: one
 * warning off, which http-proxy 1.18.1 (WebSocket relaying) triggers by
 * calling util._extend on every WebSocket. Every other warning is printed.
 */
import { compile } from './config/compile.ts';
import { formatConfigError, loadConfigFile } from './config/load.ts';
import { configJsonSchema } from './config/schema.ts';
import cluster from 'node:cluster';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { flushCompileCache } from 'node:module';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sidecar } from './sidecar.ts';
import { WorkerPool } from './cluster/primary.ts';
import { runWorker } from './cluster/worker.ts';
import { flushLogs, log } from './observe/log.ts';

interface Args {
  command: 'run' | 'check' | 'schema' | 'help' | 'version';
  config: string;
  /** Whether the config was named (--config or $SIDECAR_CONFIG) rather than the default. */
  configNamed: boolean;
  appCommand?: string[];
  /** schema: the file to write instead of stdout. */
  out?: string;
}

const DEFAULT_CONFIG = 'config/sidecar.yaml';

/** This package's package.json, from src/ or from the built dist/ alike. */
const PACKAGE_JSON = fileURLToPath(new URL('../package.json', import.meta.url));

const USAGE = `usage: sidecar [--config PATH] [--pretty] [-- CMD ARGS...]   run (CMD: the app to start and supervise)
       sidecar check [--config PATH]                         validate the config, print every error
       sidecar schema [--out FILE]                           the config's JSON Schema, to stdout or FILE
       sidecar --version | --help
The config defaults to $SIDECAR_CONFIG, else ${DEFAULT_CONFIG}. Paths on the command
line are relative to the current folder; paths in the config, to the config file's folder.`;

function parseArgs(argv: string[]): Args | string {
  const given = process.env.SIDECAR_CONFIG;
  const args: Args = { command: 'run', config: given ? fromUserDir(given) : DEFAULT_CONFIG, configNamed: Boolean(given) };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      args.appCommand = argv.slice(i + 1);
      if (args.appCommand.length === 0) return 'nothing after "--": give the app command, e.g. -- node app.js';
      break;
    }
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (flag === '--config' || flag === '-c' || flag === '--out' || flag === '-o') {
      const value = inline ?? argv[++i];
      if (!value) return `${flag} needs a file path`;
      if (flag === '--out' || flag === '-o') args.out = fromUserDir(value);
      else [args.config, args.configNamed] = [fromUserDir(value), true];
    } else if (inline !== undefined) {
      return `unknown option "${arg}"`;
    } else if (arg === 'check' || arg === 'schema' || arg === 'run') {
      args.command = arg;
    } else if (arg === '--pretty') {
      // Read by observe/log.ts when the logger is made (before this runs).
    } else if (arg === '--help' || arg === '-h' || arg === 'help') {
      args.command = 'help';
    } else if (arg === '--version' || arg === '-v' || arg === 'version') {
      args.command = 'version';
    } else {
      return `unknown ${arg.startsWith('-') ? 'option' : 'argument'} "${arg}"`;
    }
  }
  if (args.out !== undefined && args.command !== 'schema') return '--out goes with schema: sidecar schema --out FILE';
  return args;
}

/**
 * A path the user typed, relative to where they typed it. `npm start -- --config
 * x.yaml` runs in this package's folder and says in INIT_CWD where the user
 * was; everything else (npx, `npm exec`, a script of the user's own package,
 * the command run directly, a process some npm script started) runs in the
 * folder it was started from, as any command does.
 */
function fromUserDir(path: string): string {
  const { npm_lifecycle_event: event, npm_package_json: packageJson, INIT_CWD: userDir } = process.env;
  const ourNpmStart = event === 'start' && packageJson !== undefined && resolve(packageJson) === PACKAGE_JSON;
  return resolve((ourNpmStart && userDir) || process.cwd(), path);
}

async function main(): Promise<number | undefined> {
  const args = parseArgs(process.argv.slice(2));
  if (typeof args === 'string') {
    process.stderr.write(`sidecar: ${args}\n${USAGE}\n`);
    return 1;
  }
  if (args.command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (args.command === 'version') {
    const { version } = JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { version: string };
    process.stdout.write(`sidecar ${version} (Node.js ${process.version})\n`);
    return 0;
  }
  if (args.command === 'schema') {
    const text = `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
    if (args.out === undefined) {
      process.stdout.write(text);
      return 0;
    }
    try {
      writeFileSync(args.out, text);
      return 0;
    } catch (error) {
      process.stderr.write(`sidecar: cannot write ${args.out}: ${(error as Error).message}\n`);
      return 1;
    }
  }
  if (!args.configNamed && !existsSync(args.config)) {
    // A newcomer's first run in their own folder: say what to give, not just that a file is missing.
    process.stderr.write(`sidecar: no config: give --config PATH or set SIDECAR_CONFIG (the default, ${DEFAULT_CONFIG}, is not in ${process.cwd()})\n${USAGE}\n`);
    return 1;
  }

  // A worker of a multi-process sidecar (`workers` > 1): it serves; its primary coordinates.
  if (cluster.isWorker) {
    const failed = await runWorker(args.config);
    if (failed === undefined) return undefined;
    await flushLogs();
    process.exit(failed); // the IPC channel to the primary would keep a failed worker alive
  }

  // `check` judges the file: a certificate that has expired is a warning there, and an error for a start.
  const loaded = await loadConfigFile(args.config, process.env, { check: args.command === 'check' });
  const warnings = loaded.warnings ?? [];
  if (!loaded.ok) {
    process.stderr.write(`${[...loaded.errors, ...warnings].map(formatConfigError).join('\n')}\n`);
    process.stderr.write(`sidecar: ${args.config}: ${loaded.errors.length} error${loaded.errors.length === 1 ? '' : 's'}, not started\n`);
    return 1;
  }
  if (args.command === 'check') {
    if (warnings.length > 0) process.stderr.write(`${warnings.map(formatConfigError).join('\n')}\n`);
    process.stdout.write(`${args.config}: ok (sha256 ${loaded.hash})\n`);
    return 0;
  }
  for (const warning of warnings) log.warn({ source: loaded.source }, `config: ${formatConfigError(warning)}`);

  const snapshot = compile(loaded);
  let appExitCode: number | undefined;
  const workers = snapshot.config.workers > 1 ? new WorkerPool(snapshot.config.workers) : undefined;
  const sidecar = new Sidecar(snapshot, {
    role: workers ? 'primary' : 'single',
    cluster: workers,
    appCommand: args.appCommand,
    onAppExit: (code, reason) => {
      appExitCode = code;
      if (reason) process.stderr.write(`sidecar: ${reason}\n`);
      void shutdown(reason ?? `the app exited with code ${code}`);
    },
  });

  let stopping: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      log.info({ reason }, 'shutting down');
      await sidecar.stop();
      await flushLogs();
      process.exit(appExitCode ?? 0);
    })();
    return stopping;
  };
  // A second SIGTERM or SIGINT (Ctrl-C twice) during the drain means now, as in Caddy: what is
  // still in flight is cut, and the app's group is SIGKILLed by the supervisor's exit hook.
  let forced = false;
  const onStopSignal = (signal: 'SIGTERM' | 'SIGINT'): void => {
    if (!stopping) return void shutdown(signal);
    if (forced) return;
    forced = true;
    log.warn({ signal }, 'second signal while draining: exiting now');
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
    void flushLogs().then(() => process.exit(128 + constants.signals[signal]));
  };
  process.on('SIGTERM', () => onStopSignal('SIGTERM'));
  process.on('SIGINT', () => onStopSignal('SIGINT'));
  process.on('SIGHUP', () => void sidecar.reload());

  try {
    if (workers) {
      workers.setAppReady(sidecar.appReady);
      await workers.start();
      // Workers answer 503 app_not_ready until the app (in this process's care) is ready.
      setInterval(() => workers.setAppReady(sidecar.appReady), 100).unref();
    }
    await sidecar.start();
    // Every module is loaded now: with NODE_COMPILE_CACHE set (npm start, the image), write
    // the cache at once rather than at exit, which a SIGKILL never reaches. A warm cache
    // spares the next start the TypeScript stripper (about 20 MB of RSS) and its time.
    flushCompileCache();
  } catch (err) {
    process.stderr.write(`sidecar: ${(err as Error).message}\n`);
    await sidecar.stop(0).catch(() => undefined);
    return 1;
  }
  return undefined; // keep running
}

process.on('uncaughtException', (err) => {
  // Keep serving what we can: one broken request must not take the process down.
  log.error({ err }, 'uncaught exception');
});
process.on('unhandledRejection', (err) => {
  log.error({ err }, 'unhandled rejection');
});

main().then(
  async (code) => {
    if (code !== undefined) {
      process.exitCode = code;
      await flushLogs();
    }
  },
  async (err: unknown) => {
    process.stderr.write(`sidecar: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
    await flushLogs();
  },
);
