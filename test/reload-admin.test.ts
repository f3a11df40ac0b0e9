/**
 * Explicit reloads: `POST /reload` on the admin port (good, bad and
 * unchanged files), what `GET /config` and the reload metrics say afterwards,
 * and `SIGHUP` to a real sidecar process.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'undici';
import { echoServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';
import { metric, reloads, renameReplace, versionAt, waitFor } from './helpers/reload.ts';

let upstream: TestServer;
const running: RunningSidecar[] = [];
const processes: SidecarProcess[] = [];

function version(n: number, base = TEST_BASE): string {
  return `${base}
upstreams: { app: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  headersTimeout: ${n}s
  routes:
    - { name: app, match: { path: / }, upstream: app, headers: { response: { add: { x-config-version: "${n}" } } } }
`;
}

/** A file with three errors: a schema error, an unknown key and a bad duration. */
const BROKEN = `${TEST_BASE}
ingress:
  listen: 127.0.0.1:0
  headersTimeout: soon
  routes:
    - { match: { path: / }, upstrem: app }
`;

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

async function configOf(sidecar: RunningSidecar): Promise<{ hash: string; source: string; loadedAt: string; config: unknown }> {
  return (await (await request(sidecar.admin('/config'))).body.json()) as { hash: string; source: string; loadedAt: string; config: unknown };
}

async function postReload(sidecar: RunningSidecar): Promise<{ status: number; body: { hash?: string; errors?: string[] } }> {
  const response = await request(sidecar.admin('/reload'), { method: 'POST' });
  return { status: response.statusCode, body: (await response.body.json()) as { hash?: string; errors?: string[] } };
}

beforeAll(async () => {
  upstream = await echoServer();
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((sidecar) => sidecar.close()));
  await Promise.all(processes.splice(0).map((proc) => proc.stop()));
});
afterAll(async () => {
  await upstream.close();
});

describe('POST /reload', () => {
  it('good file: 200 with the new hash; /config and the metrics show it', async () => {
    const sidecar = await startSidecar(version(1));
    running.push(sidecar);
    const admin = sidecar.admin('').replace(/\/$/, '');
    const before = await configOf(sidecar);
    expect(before).toMatchObject({ hash: sha256(sidecar.file), source: sidecar.file });
    const successes = await reloads(admin, 'success');
    const startedAt = Math.floor(Date.now() / 1000);

    renameReplace(sidecar.file, version(2));
    const answer = await postReload(sidecar);
    expect(answer).toEqual({ status: 200, body: { hash: sha256(sidecar.file) } });
    expect(await versionAt(sidecar.url())).toBe('2');

    const after = await configOf(sidecar);
    expect(after.hash).toBe(answer.body.hash);
    expect(after.source).toBe(sidecar.file);
    expect(Date.parse(after.loadedAt)).toBeGreaterThanOrEqual(Date.parse(before.loadedAt));
    // Header rule values are shown redacted: the timeout tells the versions apart.
    expect(after.config).toMatchObject({ ingress: { headersTimeout: 2000, routes: [{ headers: { response: { add: { 'x-config-version': '[redacted]' } } } }] } });
    // The watcher may have seen the same change first: one or two successes, never a failure.
    expect(await reloads(admin, 'success')).toBeGreaterThan(successes);
    expect(await metric(admin, 'sidecar_config_last_reload_success_timestamp_seconds')).toBeGreaterThanOrEqual(startedAt);
  });

  it('bad file: 400 with every error (file:line:col key path), the old config keeps serving', async () => {
    const sidecar = await startSidecar(version(1));
    running.push(sidecar);
    const admin = sidecar.admin('').replace(/\/$/, '');
    const before = await configOf(sidecar);
    const failures = await reloads(admin, 'failure');
    const lastGood = await metric(admin, 'sidecar_config_last_reload_success_timestamp_seconds');

    writeFileSync(sidecar.file, BROKEN);
    const answer = await postReload(sidecar);
    expect(answer.status).toBe(400);
    expect(answer.body.errors).toEqual([
      expect.stringMatching(new RegExp(`^${sidecar.file}:7:19 ingress\\.headersTimeout: `)),
      expect.stringMatching(new RegExp(`^${sidecar.file}:9:29 ingress\\.routes\\[0\\]\\.upstrem: `)),
    ]);
    expect(await reloads(admin, 'failure')).toBeGreaterThan(failures);
    expect(await metric(admin, 'sidecar_config_last_reload_success_timestamp_seconds')).toBe(lastGood);
    expect(await versionAt(sidecar.url())).toBe('1');
    expect((await configOf(sidecar)).hash).toBe(before.hash);

    // Fixed: the next reload applies it.
    writeFileSync(sidecar.file, version(3));
    expect((await postReload(sidecar)).status).toBe(200);
    expect(await versionAt(sidecar.url())).toBe('3');
  });

  it('an unchanged file still reloads and counts as a success', async () => {
    const sidecar = await startSidecar(version(1));
    running.push(sidecar);
    const admin = sidecar.admin('').replace(/\/$/, '');
    const successes = await reloads(admin, 'success');
    const before = await configOf(sidecar);
    expect(await postReload(sidecar)).toEqual({ status: 200, body: { hash: before.hash } });
    expect(await postReload(sidecar)).toEqual({ status: 200, body: { hash: before.hash } });
    expect(await reloads(admin, 'success')).toBe(successes + 2);
  });

  it('concurrent reloads run one after the other and all answer', async () => {
    const sidecar = await startSidecar(version(1));
    running.push(sidecar);
    writeFileSync(sidecar.file, version(2));
    const answers = await Promise.all(Array.from({ length: 5 }, () => postReload(sidecar)));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200]);
    expect(new Set(answers.map((answer) => answer.body.hash))).toEqual(new Set([sha256(sidecar.file)]));
    expect(await versionAt(sidecar.url())).toBe('2');
  });
});

describe('SIGHUP', () => {
  const PROCESS_BASE = `
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: false }
`;

  it('reloads the file, even unchanged; a broken file is refused with its errors logged and the old config kept', async () => {
    const file = writeConfig(version(1, PROCESS_BASE));
    const proc = await spawnSidecar(['--config', file]);
    processes.push(proc);
    const admin = `http://127.0.0.1:${proc.adminPort}`;
    const ingress = `http://127.0.0.1:${proc.ingressPort}/`;
    expect(await versionAt(ingress)).toBe('1');

    const successes = await reloads(admin, 'success');
    proc.child.kill('SIGHUP');
    await waitFor('a successful reload', async () => ((await reloads(admin, 'success')) === successes + 1 ? true : undefined));
    expect(proc.lines.filter((line) => line.msg === 'config reloaded')).toHaveLength(1);

    writeFileSync(file, BROKEN);
    const failures = await reloads(admin, 'failure');
    // The watcher sees the edit; SIGHUP must reload again anyway.
    await waitFor('the watcher to refuse the file', async () => ((await reloads(admin, 'failure')) > failures ? true : undefined));
    const afterWatcher = await reloads(admin, 'failure');
    proc.child.kill('SIGHUP');
    await waitFor('SIGHUP to refuse the file', async () => ((await reloads(admin, 'failure')) === afterWatcher + 1 ? true : undefined));
    const refused = proc.lines.filter((line) => typeof line.msg === 'string' && line.msg.startsWith('config reload refused'));
    expect(refused.some((line) => String(line.msg).startsWith(`config reload refused: ${file}:7:19 ingress.headersTimeout: not a duration`))).toBe(true);
    expect(refused.some((line) => String(line.msg).includes(`${file}:9:29 ingress.routes[0].upstrem`))).toBe(true);
    expect(refused.every((line) => line.level === 'error' && line.source === file)).toBe(true);
    expect(await versionAt(ingress)).toBe('1');

    writeFileSync(file, version(2, PROCESS_BASE));
    proc.child.kill('SIGHUP');
    await waitFor('version 2', async () => ((await versionAt(ingress)) === '2' ? true : undefined));
    expect(await proc.stop()).toBe(0);
  });
});
