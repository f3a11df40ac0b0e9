/**
 * Reload tests: the ways a config file gets replaced in real life (in-place
 * write, an editor's rename-replace, the Kubernetes ConfigMap `..data` symlink
 * swap), reload metrics read from the admin port, and bounded waiting.
 */
import { mkdtempSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync, mkdirSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';

/** Polls `probe` every `intervalMs` until it returns a value other than undefined; throws after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 5_000, intervalMs = 25): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (let i = 0; i < Math.ceil(timeoutMs / intervalMs) + 1; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** One sample of a metric from the admin port (0 when absent). */
export async function metric(adminUrl: string, name: string, labels = ''): Promise<number> {
  const response = await request(`${adminUrl}/metrics`);
  const text = await response.body.text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

export const reloads = (adminUrl: string, result: 'success' | 'failure'): Promise<number> =>
  metric(adminUrl, 'sidecar_config_reloads_total', `{result="${result}"}`);

/** Writes over the existing file (truncate + write, the inode stays). */
export function writeInPlace(file: string, text: string): void {
  writeFileSync(file, text);
}

/** Writes a temp file beside it and renames it over the config (what vim, VS Code, sed -i and kubectl cp do). */
export function renameReplace(file: string, text: string): void {
  const temp = `${file}.tmp-${process.pid}`;
  writeFileSync(temp, text);
  renameSync(temp, file);
}

/**
 * A Kubernetes ConfigMap volume: `dir/NAME -> ..data/NAME`, `..data -> ..rev-N`.
 * `kubeletUpdate` writes a new revision directory, points `..data_tmp` at it,
 * renames that over `..data` and removes the old revision, as kubelet's
 * AtomicWriter does; `dir/NAME` (a symlink) is (re)created when it is not one.
 */
export class ConfigMapDir {
  readonly dir: string;
  readonly name: string;
  #revision = 0;

  constructor(dir: string, name = 'sidecar.yaml') {
    this.dir = dir;
    this.name = name;
  }

  get file(): string {
    return join(this.dir, this.name);
  }

  kubeletUpdate(text: string): void {
    this.kubeletUpdateFiles({ [this.name]: text });
  }

  /** The same for a volume of several files (a Secret's tls.crt and tls.key): one revision holds them all. */
  kubeletUpdateFiles(files: Readonly<Record<string, string>>): void {
    const revision = `..rev-${++this.#revision}`;
    mkdirSync(join(this.dir, revision));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(this.dir, revision, name), text);
    const data = join(this.dir, '..data');
    let previous: string | undefined;
    try {
      previous = readlinkSync(data);
    } catch {
      previous = undefined;
    }
    symlinkSync(revision, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), data);
    for (const name of Object.keys(files)) {
      const file = join(this.dir, name);
      if (isSymlink(file)) continue;
      const link = join(this.dir, `.${name}.link-tmp`);
      symlinkSync(join('..data', name), link);
      renameSync(link, file);
    }
    if (previous) rmSync(join(this.dir, previous), { recursive: true, force: true });
  }
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/** A temp directory for one test's config files. */
export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'sidecar-reload-'));
}

/** The `x-config-version` a GET answers with (undefined on any error). */
export async function versionAt(url: string): Promise<string | undefined> {
  try {
    const response = await request(url);
    await response.body.dump();
    const value = response.headers['x-config-version'];
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Waits until `url` answers with `x-config-version: version`. */
export function waitForVersion(url: string, version: string | number, timeoutMs = 5_000): Promise<true> {
  return waitFor(`x-config-version ${version} at ${url}`, async () => ((await versionAt(url)) === String(version) ? true : undefined), timeoutMs);
}
