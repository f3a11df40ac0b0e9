/**
 * The app's working directory (issue 20). `npm start -- --config f.yaml --
 * node server.js` without an `app:` block runs the command in the folder the
 * user typed it in: INIT_CWD under npm (npm itself runs in the package's
 * folder), else the sidecar's own working directory. An `app.cwd` in the
 * config stays relative to the config file's folder (SPEC). The app here is
 * a server.js that exits 42, so the exit code says it was found; before the
 * fix `-- node server.js` ran in the sidecar's folder and Node exited 1
 * ("Cannot find module").
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';

const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

const BASE = `
admin: { listen: 127.0.0.1:0 }
`;

/** A folder with a server.js that exits 42. */
function appFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sidecar-app-'));
  writeFileSync(join(dir, 'server.js'), 'process.exit(42);\n');
  return dir;
}

async function exitOf(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string }): Promise<{ code: number | null; proc: SidecarProcess }> {
  const proc = await spawnSidecar(args, { waitListening: false, ...options });
  cleanup.push(() => void proc.stop('SIGKILL'));
  return { code: await proc.exited, proc };
}

describe('the working directory of the app', () => {
  it('-- CMD without an app block, under npm: the folder npm was run from (INIT_CWD)', async () => {
    const dir = appFolder();
    // The sidecar runs in the repository, as `npm start` makes it.
    const { code, proc } = await exitOf(['--config', writeConfig(BASE), '--', process.execPath, 'server.js'], { env: { INIT_CWD: dir } });
    expect(code).toBe(42);
    expect(proc.lines.find((line) => line.msg === 'app started')?.cwd).toBe(dir);
  });

  it('-- CMD without an app block, not under npm: the sidecar\'s working directory', async () => {
    const dir = appFolder();
    const { code } = await exitOf(['--config', writeConfig(BASE), '--', process.execPath, 'server.js'], { env: { INIT_CWD: undefined }, cwd: dir });
    expect(code).toBe(42);
  });

  it('app.cwd in the config: relative to the config file\'s folder, wherever the command was typed', async () => {
    const file = writeConfig(`${BASE}app: { command: [${JSON.stringify(process.execPath)}, server.js], cwd: ./sub }\n`);
    const sub = join(dirname(file), 'sub');
    mkdirSync(sub);
    writeFileSync(join(sub, 'server.js'), 'process.exit(42);\n');
    const { code } = await exitOf(['--config', file], { env: { INIT_CWD: appFolder() } });
    expect(code).toBe(42);
  });
});
