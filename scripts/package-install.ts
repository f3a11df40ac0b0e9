/**
 * The package as a user gets it: `npm pack` of a checkout, installed into an
 * app's own folder. Shared by test/package-install.test.ts and scripts/smoke.ts.
 */
import { spawnSync } from 'node:child_process';
import { delimiter, join, sep } from 'node:path';

/**
 * The environment of a user's shell: PATH without any node_modules/.bin (npm
 * scripts put the repository's Node 24 there), so `node` is the system's, as
 * for someone who only installed the package. npm's own variables go too.
 */
export function userEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(env).filter(([name]) => !/^npm_/i.test(name) && name !== 'INIT_CWD'));
  const path = (env.PATH ?? '').split(delimiter).filter((dir) => dir !== '' && !dir.endsWith(`${sep}node_modules${sep}.bin`));
  return { ...clean, PATH: path.join(delimiter) };
}

/** Runs `npm pack` in `repo` (its prepack builds dist/) and returns the tarball's path in `destination`. */
export function pack(repo: string, destination: string): string {
  const result = spawnSync('npm', ['pack', '--json', '--pack-destination', destination], { cwd: repo, encoding: 'utf8', timeout: 300_000 });
  if (result.status !== 0) throw new Error(`npm pack failed (${result.status}): ${result.stderr}`);
  // prepack's own output comes first on stdout; the JSON report is the last thing npm prints.
  const report = JSON.parse(result.stdout.slice(result.stdout.indexOf('[\n'))) as Array<{ filename: string }>;
  return join(destination, report[0].filename);
}

export type InstallResult = { ok: true; how: string } | { ok: false; output: string };

/**
 * `npm install <what>` in `app`, from the npm cache alone first (--offline); when the cache
 * lacks something (ENOTCACHED: the registry's metadata of a dependency was never fetched here),
 * again with the registry allowed (--prefer-offline). Not ok only when both fail.
 */
export function install(app: string, what: string, env: NodeJS.ProcessEnv): InstallResult {
  const outputs: string[] = [];
  for (const mode of ['--offline', '--prefer-offline']) {
    const result = spawnSync('npm', ['install', mode, '--no-audit', '--no-fund', what], { cwd: app, env, encoding: 'utf8', timeout: 300_000 });
    if (result.status === 0) return { ok: true, how: `npm install ${mode}` };
    outputs.push(`npm install ${mode}: exit ${result.status}\n${result.stderr.trim().split('\n').slice(-3).join('\n')}`);
    if (!/ENOTCACHED/.test(result.stderr)) break; // a real failure, not a cache miss
  }
  return { ok: false, output: outputs.join('\n') };
}
