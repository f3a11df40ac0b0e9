#!/usr/bin/env -S node --disable-warning=DEP0060
/**
 * Command line (SPEC.md "Command line"):
 *   sidecar [--config PATH] [-- CMD ARGS...]   run (default config/sidecar.yaml, or $SIDECAR_CONFIG)
 *   sidecar check [--config PATH]              validate only: exit 0, or print every error and exit 1
 *   sidecar schema                             print the JSON Schema of the config file
 * Exit codes: 0 clean shutdown; 1 bad config or start-up failure; with a
 * supervised app and `restart: never`, the app's own exit code.
 *
 * The shebang (as `npm start` and the Dockerfile) turns off one warning:
 * DEP0060, which http-proxy 1.18.1 (WebSocket relaying) triggers by calling
 * util._extend on every WebSocket. Every other warning is still printed.
 */
import { compile } from './config/compile.ts';
import { formatConfigError, loadConfigFile } from './config/load.ts';
import { configJsonSchema } from './config/schema.ts';
import cluster from 'node:cluster';
import { flushCompileCache } from 'node:module';
import { resolve } from 'node:path';
import { Sidecar, DRAIN_DEADLINE_MS } from './sidecar.ts';
import { WorkerPool } from './cluster/primary.ts';
import { runWorker } from './cluster/worker.ts';
import { flushLogs, log } from './observe/log.ts';

interface Args {
  command: 'run' | 'check' | 'schema' | 'help';
  config: string;
  appCommand?: string[];
}

const USAGE = `usage: sidecar [--config PATH] [--pretty] [-- CMD ARGS...]
       sidecar check [--config PATH]
       sidecar schema
The config defaults to $SIDECAR_CONFIG, else config/sidecar.yaml.`;

function parseArgs(argv: string[]): Args | string {
  const given = process.env.SIDECAR_CONFIG;
  const args: Args = { command: 'run', config: given ? fromUserDir(given) : 'config/sidecar.yaml' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      args.appCommand = argv.slice(i + 1);
      if (args.appCommand.length === 0) return 'nothing after "--": give the app command, e.g. -- node app.js';
      break;
    }
    if (arg === '--config' || arg === '-c') {
      const value = argv[++i];
      if (!value) return `${arg} needs a file path`;
      args.config = fromUserDir(value);
    } else if (arg.startsWith('--config=')) {
      args.config = fromUserDir(arg.slice('--config='.length));
    } else if (arg === 'check' || arg === 'schema' || arg === 'run') {
      args.command = arg;
    } else if (arg === '--pretty') {
      // Read by observe/log.ts when the logger is made (before this runs).
    } else if (arg === '--help' || arg === '-h' || arg === 'help') {
      args.command = 'help';
    } else {
      return `unknown argument "${arg}"`;
    }
  }
  return args;
}

/**
 * A path the user typed, relative to where they typed it: `npm start` runs in
 * the package folder and says where the user was in INIT_CWD.
 */
function fromUserDir(path: string): string {
  return resolve(process.env.INIT_CWD ?? process.cwd(), path);
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
  if (args.command === 'schema') {
    process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    return 0;
  }

  // A worker of a multi-process sidecar (`workers` > 1): it serves; its primary coordinates.
  if (cluster.isWorker) {
    const failed = await runWorker(args.config);
    if (failed === undefined) return undefined;
    flushLogs();
    process.exit(failed); // the IPC channel to the primary would keep a failed worker alive
  }

  const loaded = await loadConfigFile(args.config);
  if (!loaded.ok) {
    process.stderr.write(`${loaded.errors.map(formatConfigError).join('\n')}\n`);
    process.stderr.write(`sidecar: ${args.config}: ${loaded.errors.length} error${loaded.errors.length === 1 ? '' : 's'}, not started\n`);
    return 1;
  }
  if (args.command === 'check') {
    process.stdout.write(`${args.config}: ok (sha256 ${loaded.hash})\n`);
    return 0;
  }

  const snapshot = compile(loaded);
  let appExitCode: number | undefined;
  const workers = snapshot.config.workers > 1 ? new WorkerPool(snapshot.config.workers) : undefined;
  const sidecar = new Sidecar(snapshot, {
    role: workers ? 'primary' : 'single',
    cluster: workers,
    appCommand: args.appCommand,
    onAppExit: (code) => {
      appExitCode = code;
      void shutdown(`the app exited with code ${code}`);
    },
  });

  let stopping: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      log.info({ reason }, 'shutting down');
      await sidecar.stop(DRAIN_DEADLINE_MS);
      flushLogs();
      process.exit(appExitCode ?? 0);
    })();
    return stopping;
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
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
    flushLogs();
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
  (code) => {
    if (code !== undefined) {
      flushLogs();
      process.exitCode = code;
    }
  },
  (err: unknown) => {
    process.stderr.write(`sidecar: ${(err as Error).stack ?? String(err)}\n`);
    flushLogs();
    process.exitCode = 1;
  },
);
