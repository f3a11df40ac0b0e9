/**
 * The file watcher as a reload trigger: in-place writes, rename-replace, a
 * symlinked config (target edit and link swap), the Kubernetes `..data` swap,
 * no reload for a touch or an identical rewrite, invalid versions refused, and
 * the periodic check that backs the watcher up.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, renameSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { ConfigWatcher } from '../src/config/watch.ts';
import { echoServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, startSidecarFile, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { ConfigMapDir, reloads, renameReplace, tempDir, versionAt, waitFor, waitForVersion, writeInPlace } from './helpers/reload.ts';

let upstream: TestServer;
const running: RunningSidecar[] = [];

/** Version `n` of the config: the route stamps `x-config-version: n` on every answer. */
function version(n: number): string {
  return `${TEST_BASE}
upstreams: { app: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: app, match: { path: / }, upstream: app, headers: { response: { add: { x-config-version: "${n}" } } } }
`;
}

async function start(yaml: string): Promise<RunningSidecar> {
  const sidecar = await startSidecar(yaml);
  running.push(sidecar);
  return sidecar;
}

beforeAll(async () => {
  upstream = await echoServer();
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((sidecar) => sidecar.close()));
});
afterAll(async () => {
  await upstream.close();
});

describe('config file watcher', () => {
  it('applies an in-place write', async () => {
    const sidecar = await start(version(1));
    expect(await versionAt(sidecar.url())).toBe('1');
    writeInPlace(sidecar.file, version(2));
    await waitForVersion(sidecar.url(), 2);
  });

  it('applies a rename-replace (an editor saving atomically), again and again', async () => {
    const sidecar = await start(version(1));
    for (const n of [2, 3, 4]) {
      renameReplace(sidecar.file, version(n));
      await waitForVersion(sidecar.url(), n);
    }
  });

  it('does not reload on a touch or a rewrite with the same bytes', async () => {
    const sidecar = await start(version(1));
    const admin = sidecar.admin('').replace(/\/$/, '');
    // A real change first, so the watcher is known to be live.
    writeInPlace(sidecar.file, version(2));
    await waitForVersion(sidecar.url(), 2);
    const before = await reloads(admin, 'success');
    const later = new Date(Date.now() + 5_000);
    utimesSync(sidecar.file, later, later);
    writeInPlace(sidecar.file, version(2));
    renameReplace(sidecar.file, version(2));
    await new Promise((r) => setTimeout(r, 600)); // several debounce periods
    expect(await reloads(admin, 'success')).toBe(before);
    // ... while the next real change is still seen.
    writeInPlace(sidecar.file, version(3));
    await waitForVersion(sidecar.url(), 3);
    expect(await reloads(admin, 'success')).toBe(before + 1);
  });

  it('follows a symlinked config: an edit of the target and a swap of the link are both seen', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'store'));
    writeFileSync(join(dir, 'store', 'a.yaml'), version(1));
    writeFileSync(join(dir, 'store', 'b.yaml'), version(3));
    const file = join(dir, 'sidecar.yaml');
    symlinkSync(join(dir, 'store', 'a.yaml'), file);
    const sidecar = await startSidecarFile(file, dir);
    running.push(sidecar);
    expect(await versionAt(sidecar.url())).toBe('1');

    writeInPlace(join(dir, 'store', 'a.yaml'), version(2)); // the target, in another directory
    await waitForVersion(sidecar.url(), 2);

    symlinkSync(join(dir, 'store', 'b.yaml'), join(dir, 'link.tmp'));
    renameSync(join(dir, 'link.tmp'), file); // ln -sfn, atomically
    await waitForVersion(sidecar.url(), 3);

    writeInPlace(join(dir, 'store', 'b.yaml'), version(4)); // the new target is watched now
    await waitForVersion(sidecar.url(), 4);
    writeInPlace(join(dir, 'store', 'a.yaml'), version(99)); // the old one no longer matters
    renameReplace(join(dir, 'store', 'b.yaml'), version(5));
    await waitForVersion(sidecar.url(), 5);
    expect(readFileSync(file, 'utf8')).toBe(version(5));
  });

  it('sees the Kubernetes ConfigMap update (..data symlink swap), revision after revision', async () => {
    const dir = tempDir();
    const configMap = new ConfigMapDir(dir);
    configMap.kubeletUpdate(version(1));
    const sidecar = await startSidecarFile(configMap.file, dir);
    running.push(sidecar);
    expect(await versionAt(sidecar.url())).toBe('1');
    for (const n of [2, 3, 4]) {
      configMap.kubeletUpdate(version(n));
      await waitForVersion(sidecar.url(), n);
    }
    expect((await (await request(sidecar.admin('/config'))).body.json()) as { source: string }).toMatchObject({ source: configMap.file });
  });

  it('refuses an invalid version: the old config keeps serving, the failure is counted, the next valid one applies', async () => {
    const sidecar = await start(version(1));
    const admin = sidecar.admin('').replace(/\/$/, '');
    const failures = await reloads(admin, 'failure');
    const good = (await (await request(sidecar.admin('/config'))).body.json()) as { hash: string };

    renameReplace(sidecar.file, version(2).replace('routes:', 'routs:'));
    await waitFor('a failed reload', async () => ((await reloads(admin, 'failure')) > failures ? true : undefined));
    expect(await versionAt(sidecar.url())).toBe('1');
    expect(((await (await request(sidecar.admin('/config'))).body.json()) as { hash: string }).hash).toBe(good.hash);

    // Half a file, as a slow writer leaves it: just invalid until complete.
    const full = version(3);
    const failuresBefore = await reloads(admin, 'failure');
    writeInPlace(sidecar.file, full.slice(0, full.lastIndexOf('{') + 8));
    await waitFor('a failed reload', async () => ((await reloads(admin, 'failure')) > failuresBefore ? true : undefined));
    expect(await versionAt(sidecar.url())).toBe('1');
    writeInPlace(sidecar.file, full);
    await waitForVersion(sidecar.url(), 3);
  });

  it('the periodic check catches what no event reported (a directory that appears later)', async () => {
    const dir = join(tempDir(), 'not-yet');
    const file = join(dir, 'sidecar.yaml');
    let changes = 0;
    const watcher = new ConfigWatcher({ file, hash: 'none', pollMs: 100, onChange: async () => void changes++ });
    await watcher.start();
    try {
      await new Promise((r) => setTimeout(r, 300));
      const unreadable = changes; // a missing file counts once (its reload fails once), not on every check
      expect(unreadable).toBe(1);
      mkdirSync(dir);
      writeFileSync(file, version(1));
      await waitFor('the change', () => (changes > unreadable ? true : undefined));
      // The watch is armed now: later writes are seen too.
      writeFileSync(file, version(2));
      await waitFor('the second change', () => (changes > unreadable + 1 ? true : undefined));
    } finally {
      watcher.close();
    }
  });
});
