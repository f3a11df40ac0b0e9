/**
 * A second SIGTERM or SIGINT while the sidecar drains (Ctrl-C twice, an
 * impatient operator) means "now", as in Caddy: the process exits at once
 * with 128 + the signal's number, cutting what is in flight, and the app's
 * group is killed. Before, the second signal was ignored and the process
 * waited for the whole drain deadline (here a minute).
 */
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { writeConfig } from './helpers/process.ts';
import { startHttpServer } from './helpers/servers.ts';
import { processGone, spawnWithIdleApp } from './helpers/lifecycle.ts';
import { waitFor } from './helpers/reload.ts';

const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

describe('a second stop signal during the drain', () => {
  for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
    it(`${signal} twice: exit ${code} at once, the request in flight cut, the app gone`, async () => {
      let held = 0;
      const upstream = await startHttpServer(() => void held++); // never answers
      cleanup.push(() => upstream.close());
      const file = writeConfig(`
admin: { listen: 127.0.0.1:0 }
drainTimeout: 1m
upstreams: { up: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes: [{ match: { path: / }, upstream: up }]
`);
      const { proc, appPid } = await spawnWithIdleApp(file, cleanup);
      const inFlight = request(`http://127.0.0.1:${proc.ingressPort}/held`).then((r) => r.statusCode, () => 'cut');
      await waitFor('the request to reach the upstream', () => (held === 1 ? true : undefined));

      proc.child.kill(signal);
      await waitFor('the drain', () => (proc.lines.some((line) => line.msg === 'draining') ? true : undefined));
      proc.child.kill(signal);
      const outcome = await Promise.race([
        proc.exited.then((exitCode) => ({ exited: exitCode })),
        new Promise<{ exited: string }>((resolve) => setTimeout(() => resolve({ exited: 'still running' }), 10_000)),
      ]);
      expect(outcome).toEqual({ exited: code });
      expect(await inFlight).toBe('cut');
      expect(await processGone(appPid)).toBe(true);
    });
  }
});
