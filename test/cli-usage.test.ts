/**
 * The first commands a newcomer types (issue 23): `--version` and `--help`
 * answer on stdout and exit 0; a mistake exits 1 with the usage on stderr; a
 * run with no config anywhere says what to give instead of only that the
 * default file is missing.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, ROOT } from './helpers/process.ts';

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function sidecar(args: string[], cwd = ROOT) {
  const env = { ...process.env };
  delete env.SIDECAR_CONFIG;
  return spawnSync(process.execPath, [CLI, ...args], { cwd, env, encoding: 'utf8', timeout: 30_000 });
}

describe('--version, --help and mistakes on the command line', () => {
  it.each([['--version'], ['-v'], ['version']])('%s prints the package version and exits 0', (flag) => {
    const result = sidecar([flag]);
    expect(result.status).toBe(0);
    expect(result.stdout).toBe(`sidecar ${VERSION} (Node.js ${process.version})\n`);
    expect(result.stderr).toBe('');
  });

  it.each([['--help'], ['-h'], ['help']])('%s prints the usage of every command on stdout and exits 0', (flag) => {
    const result = sidecar([flag]);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^usage: sidecar \[--config PATH\]/);
    for (const part of ['sidecar check [--config PATH]', 'sidecar schema [--out FILE]', 'sidecar --version | --help', '-- CMD ARGS...']) {
      expect(result.stdout).toContain(part);
    }
    expect(result.stderr).toBe('');
  });

  it.each([
    [['--bogus'], 'unknown option "--bogus"'],
    [['chek'], 'unknown argument "chek"'],
    [['--config'], '--config needs a file path'],
    [['--pretty=yes'], 'unknown option "--pretty=yes"'],
    [['check', '--out', 'x.json'], '--out goes with schema'],
  ])('%j exits 1 with the mistake and the usage on stderr, nothing on stdout', (args, mistake) => {
    const result = sidecar(args);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`sidecar: ${mistake}`);
    expect(result.stderr).toContain('usage: sidecar');
    expect(result.stdout).toBe('');
  });

  it('no --config, no SIDECAR_CONFIG and no default file: says what to give, exit 1', () => {
    const empty = mkdtempSync(join(tmpdir(), 'sidecar-noconfig-'));
    const result = sidecar([], empty);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`sidecar: no config: give --config PATH or set SIDECAR_CONFIG (the default, config/sidecar.yaml, is not in ${empty})`);
  });
});
