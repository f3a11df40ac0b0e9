/**
 * Ctrl-C in a terminal (issue 20) sends SIGINT to the whole foreground
 * process group. The app runs in a group of its own, so only the sidecar gets
 * it: the sidecar drains (the request in flight to the app gets its answer),
 * then stops the app, then exits 0. The test makes the sidecar lead its own
 * group, as a shell's foreground job does, and signals the group. Before the
 * fix the app died at once with the sidecar's group and the request in
 * flight got 502 upstream_reset.
 */
import { dirname, join } from 'node:path';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnSidecar, writeConfig } from './helpers/process.ts';
import { closedPort } from './helpers/servers.ts';
import { killIfAlive, processGone, readPidFile } from './helpers/lifecycle.ts';
import { waitFor } from './helpers/reload.ts';

const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** The app: GET /slow is held until GET /release; GET /held says how many are held. */
const APP = `let held = [];
require('node:http').createServer((req, res) => {
  if (req.url === '/slow') return void held.push(res);
  if (req.url === '/held') return res.end(String(held.length));
  if (req.url === '/release') { for (const r of held) r.end('slow done'); held = []; return res.end('released'); }
  res.end('ok');
}).listen(Number(process.env.PORT), '127.0.0.1', () => require('node:fs').writeFileSync(process.env.PID_FILE, String(process.pid)));`;

async function appSays(port: number, path: string): Promise<string | undefined> {
  try {
    const response = await request(`http://127.0.0.1:${port}${path}`);
    return await response.body.text();
  } catch {
    return undefined;
  }
}

describe('SIGINT to the process group (Ctrl-C)', () => {
  it('drains first: the request in flight to the app gets its 200, then the app is stopped, exit 0', async () => {
    const appPort = await closedPort();
    const file = writeConfig(`
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: true }
upstreams: { app: { endpoints: [http://127.0.0.1:${appPort}] } }
ingress:
  listen: 127.0.0.1:0
  routes: [{ match: { path: / }, upstream: app }]
app:
  command: [${JSON.stringify(process.execPath)}, -e, ${JSON.stringify(APP)}]
  env: { PORT: "${appPort}", PID_FILE: app.pid }
  ready: { url: "http://127.0.0.1:${appPort}/", timeout: 10s, interval: 50ms }
`);
    const proc = await spawnSidecar(['--config', file], { detached: true });
    const group = proc.child.pid!;
    cleanup.push(() => {
      try {
        process.kill(-group, 'SIGKILL');
      } catch {
        // the group is gone
      }
    });
    const appPid = await readPidFile(join(dirname(file), 'app.pid'));
    cleanup.push(() => killIfAlive(appPid));
    await waitFor('the app to be ready', () => (proc.lines.some((line) => line.msg === 'app ready') ? true : undefined), 10_000);

    const inFlight = request(`http://127.0.0.1:${proc.ingressPort}/slow`);
    await waitFor('the request to reach the app', async () => ((await appSays(appPort, '/held')) === '1' ? true : undefined));

    process.kill(-group, 'SIGINT');
    await waitFor('the sidecar to drain', () => (proc.lines.some((line) => line.msg === 'draining') ? true : undefined));
    expect(await appSays(appPort, '/held')).toBe('1'); // the app did not get the SIGINT
    expect(await appSays(appPort, '/release')).toBe('released');

    const response = await inFlight;
    expect(response.statusCode).toBe(200);
    expect(await response.body.text()).toBe('slow done');
    expect(await proc.exited).toBe(0);
    expect(await processGone(appPid)).toBe(true);
  });
});
