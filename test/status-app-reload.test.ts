/**
 * The top of the status page: the last reload's result and time (with the
 * errors of a failed one), and the supervised app's state and memory, read
 * from /proc as `sidecar_app_resident_memory_bytes` is.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { request } from 'undici';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { spawnSidecar, writeConfig, LOGGED_BASE, type SidecarProcess } from './helpers/process.ts';

interface Status {
  config: { hash: string };
  lastReload: { result: string; at: string; hash?: string; errors?: string[] } | null;
  app: { up: boolean; rssBytes: number } | null;
}

const status = async (url: string): Promise<Status> => (await (await request(url)).body.json()) as Status;

describe('status: last reload and the supervised app', () => {
  let sidecar: RunningSidecar | undefined;
  let proc: SidecarProcess | undefined;
  afterEach(async () => {
    await sidecar?.close();
    await proc?.stop();
    sidecar = undefined;
    proc = undefined;
  });

  it('shows no reload at first, then a failed one with its errors, then a successful one with its hash', async () => {
    sidecar = await startSidecar(TEST_BASE);
    expect((await status(sidecar.admin('/status.json'))).lastReload).toBeNull();
    writeFileSync(sidecar.file, `${TEST_BASE}\nupstreams: { a: { endpoints: [http://127.0.0.1:1], balance: fastest } }\n`);
    expect((await sidecar.sidecar.reload()).ok).toBe(false);
    const failed = await status(sidecar.admin('/status.json'));
    expect(failed.lastReload).toMatchObject({ result: 'failure' });
    expect(failed.lastReload!.errors!.join('\n')).toContain('upstreams.a.balance');
    const page = await (await request(sidecar.admin('/'))).body.text();
    expect(page).toContain('failure');
    expect(page).toContain('upstreams.a.balance');
    writeFileSync(sidecar.file, `${TEST_BASE}\n# changed\n`);
    expect((await sidecar.sidecar.reload()).ok).toBe(true);
    const ok = await status(sidecar.admin('/status.json'));
    expect(ok.lastReload).toMatchObject({ result: 'success', hash: ok.config.hash });
    expect(ok.lastReload!.errors).toBeUndefined();
  });

  it('shows the supervised app up, with its resident memory', async () => {
    proc = await spawnSidecar(['--config', writeConfig(LOGGED_BASE), '--', process.execPath, '-e', 'setInterval(() => {}, 1000)']);
    const url = `http://127.0.0.1:${proc.adminPort}/status.json`;
    let app: Status['app'] = null;
    // The app's usage is read from /proc every 5 s.
    for (let round = 0; round < 60 && !(app?.up && app.rssBytes > 0); round++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      app = (await status(url)).app;
    }
    expect(app).toMatchObject({ up: true });
    expect(app!.rssBytes).toBeGreaterThan(1024 * 1024);
  });
});
