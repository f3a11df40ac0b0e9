/**
 * Starts a real Sidecar in this process from YAML text written to a temp
 * file (so reloads work), with listeners on ephemeral ports.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { compile } from '../../src/config/compile.ts';
import { formatConfigError, loadConfigFile } from '../../src/config/load.ts';
import { Sidecar, type SidecarOptions } from '../../src/sidecar.ts';

export interface RunningSidecar {
  readonly sidecar: Sidecar;
  readonly dir: string;
  readonly file: string;
  /** http://127.0.0.1:INGRESSPORT + path */
  url(path?: string): string;
  admin(path?: string): string;
  /** The egress port (the app's HTTP_PROXY); set by startSidecar when the config has egress. */
  readonly egressPort?: number;
  /** http://127.0.0.1:EGRESSPORT: what an app puts in HTTP_PROXY / HTTPS_PROXY. */
  readonly egressUrl?: string;
  close(): Promise<void>;
}

/** `files` (relative path -> content) are written beside the config first, e.g. a static root. */
export async function startSidecar(yaml: string, files: Record<string, string> = {}, options: SidecarOptions = {}): Promise<RunningSidecar> {
  const dir = mkdtempSync(join(tmpdir(), 'sidecar-test-'));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  const file = join(dir, 'sidecar.yaml');
  writeFileSync(file, yaml);
  return startSidecarFile(file, dir, options);
}

/** Starts a sidecar on a config file that already exists (a symlink, a ConfigMap layout); `dir` is removed at close. */
export async function startSidecarFile(file: string, dir: string, options: SidecarOptions = {}): Promise<RunningSidecar> {
  const loaded = await loadConfigFile(file);
  if (!loaded.ok) throw new Error(`test config invalid:\n${loaded.errors.map(formatConfigError).join('\n')}`);
  const sidecar = new Sidecar(compile(loaded), options);
  await sidecar.start();
  return {
    sidecar,
    dir,
    file,
    url: (path = '/') => `http://127.0.0.1:${sidecar.ingressPort}${path}`,
    admin: (path = '/') => `http://127.0.0.1:${sidecar.adminPort}${path}`,
    get egressPort() {
      return sidecar.egressPort ?? 0;
    },
    get egressUrl() {
      return `http://127.0.0.1:${sidecar.egressPort}`;
    },
    close: async () => {
      await sidecar.stop(1_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** YAML header with every listener on an ephemeral loopback port and logs silent. */
export const TEST_BASE = `
admin: { listen: 127.0.0.1:0 }
log: { level: silent, access: false }
`;
