/**
 * Hot reload under load: 20 keep-alive clients (10 through ingress, 10
 * through egress) run for about 10 s while the config file is rewritten 20
 * times, by in-place writes, rename-replace and the Kubernetes `..data`
 * symlink swap, with invalid versions among them. Every version moves the
 * route to a new upstream (so retired pools drain under load) and stamps
 * `x-config-version` on each answer. Nothing may fail; every valid version
 * must be seen by the clients, no invalid one ever, and after each invalid
 * version the previous one must still be serving.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, request } from 'undici';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { ConfigMapDir, reloads, renameReplace, tempDir, versionAt, waitFor, writeInPlace } from './helpers/reload.ts';
import { startSidecarFile, type RunningSidecar } from './helpers/sidecar.ts';

const STEPS = 20;
const STEP_MS = 450; // 20 steps: about 9 s of rewriting under load
const CLIENTS_PER_LISTENER = 10;
/** Broken versions, each broken in its own way; the last step is valid so the end state is known. */
const INVALID: Record<number, (valid: string) => string> = {
  4: (valid) => valid.replace('routes:', 'routes: [unclosed'), // YAML syntax
  8: (valid) => valid.replace('  listen: 127.0.0.1:0\n  routes:', '  listen: 127.0.0.1:0\n  rutes:'), // unknown key
  11: (valid) => valid.slice(0, valid.lastIndexOf('{') + 8), // a half-written file
  15: (valid) => valid.replace(/upstream: u\d+/, 'upstream: nowhere'), // an upstream that does not exist
  18: (valid) => valid.replace('timeout: 10s', 'timeout: soon'), // a bad duration
};
const METHODS = ['in-place', 'rename-replace', 'configmap-link', 'configmap-..data'] as const;

describe('hot reload under load', () => {
  let upstreams: TestServer[];
  let sidecar: RunningSidecar;
  let configMap: ConfigMapDir;

  function version(n: number): string {
    const endpoint = upstreams[n % 2].url;
    return `
admin: { listen: 127.0.0.1:0 }
log: { level: silent, access: false }
upstreams:
  u${n}: { endpoints: [${endpoint}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: app, match: { path: / }, upstream: u${n}, timeout: 10s, headers: { response: { add: { x-config-version: "${n}" } } } }
egress:
  listen: 127.0.0.1:0
  routes:
    - { name: app, match: { host: app.internal }, upstream: u${n}, timeout: 10s, headers: { response: { add: { x-config-version: "${n}" } } } }
`;
  }

  beforeAll(async () => {
    upstreams = [];
    for (let i = 0; i < 2; i++) {
      const server = await startHttpServer((req, res) => {
        req.resume();
        // A little latency so that requests are in flight at every swap.
        setTimeout(() => res.end('ok'), Math.floor(Math.random() * 3));
      });
      server.server.keepAliveTimeout = 30_000;
      upstreams.push(server);
    }
    const dir = tempDir();
    configMap = new ConfigMapDir(dir);
    writeInPlace(join(dir, 'sidecar.yaml'), version(0)); // starts as a plain file
    sidecar = await startSidecarFile(join(dir, 'sidecar.yaml'), dir);
  });
  afterAll(async () => {
    await sidecar?.close();
    await Promise.all(upstreams.map((server) => server.close()));
  });

  it('20 rewrites under steady load: zero failed requests, each valid version applied, each invalid one refused', { timeout: 60_000 }, async () => {
    const admin = sidecar.admin('').replace(/\/$/, '');
    const ingressUrl = `http://127.0.0.1:${sidecar.sidecar.ingressPort}`;
    const egressUrl = `http://127.0.0.1:${sidecar.sidecar.egressPort}`;
    const failures: string[] = [];
    const seen = { ingress: new Set<string>(), egress: new Set<string>() };
    let requests = 0;
    let stop = false;

    async function client(kind: 'ingress' | 'egress'): Promise<number> {
      const connection = new Client(kind === 'ingress' ? ingressUrl : egressUrl, { pipelining: 1 });
      const options =
        kind === 'ingress'
          ? { path: '/load', method: 'GET' as const }
          : { path: 'http://app.internal/load', method: 'GET' as const, headers: { host: 'app.internal' } };
      let made = 0;
      const until = Date.now() + 30_000;
      for (let i = 0; i < 1_000_000 && !stop && Date.now() < until; i++) {
        try {
          const response = await connection.request(options);
          const body = await response.body.text();
          if (response.statusCode !== 200 || body !== 'ok') failures.push(`${kind}: ${response.statusCode} ${body}`);
          const value = response.headers['x-config-version'];
          if (typeof value === 'string') seen[kind].add(value);
        } catch (err) {
          failures.push(`${kind}: ${(err as Error).message}`);
        }
        made++;
        requests++;
      }
      await connection.close();
      return made;
    }

    const clients = [
      ...Array.from({ length: CLIENTS_PER_LISTENER }, () => client('ingress')),
      ...Array.from({ length: CLIENTS_PER_LISTENER }, () => client('egress')),
    ];
    const started = Date.now();
    const startedSeconds = Math.floor(started / 1000);
    const failuresBefore = await reloads(admin, 'failure');
    let lastValid = 0;
    const validVersions: number[] = [];
    const invalidVersions: number[] = [];
    try {
      await waitFor('version 0 under load', () => (seen.ingress.has('0') && seen.egress.has('0') ? true : undefined));
      for (let step = 1; step <= STEPS; step++) {
        const valid = version(step);
        const text = INVALID[step] ? INVALID[step](valid) : valid;
        expect(text === valid).toBe(!INVALID[step]);
        const method = METHODS[(step - 1) % METHODS.length];
        const failuresNow = await reloads(admin, 'failure');
        if (method === 'in-place') writeInPlace(sidecar.file, text);
        else if (method === 'rename-replace') renameReplace(sidecar.file, text);
        else configMap.kubeletUpdate(text);

        if (INVALID[step]) {
          invalidVersions.push(step);
          await waitFor(`version ${step} (${method}) to be refused`, async () => ((await reloads(admin, 'failure')) > failuresNow ? true : undefined));
          expect(await versionAt(`${ingressUrl}/probe`)).toBe(String(lastValid));
        } else {
          validVersions.push(step);
          await waitFor(`version ${step} (${method}) to reach the clients`, () =>
            seen.ingress.has(String(step)) && seen.egress.has(String(step)) ? true : undefined,
          );
          lastValid = step;
        }
        const pause = started + step * STEP_MS - Date.now();
        if (pause > 0) await new Promise((r) => setTimeout(r, pause));
      }
    } finally {
      stop = true;
    }
    const made = await Promise.all(clients);

    expect(failures).toEqual([]);
    expect(made.every((count) => count > 0)).toBe(true);
    expect(requests).toBeGreaterThan(STEPS * CLIENTS_PER_LISTENER * 2);
    for (const n of validVersions) {
      expect(seen.ingress.has(String(n)), `ingress saw version ${n}`).toBe(true);
      expect(seen.egress.has(String(n)), `egress saw version ${n}`).toBe(true);
    }
    for (const n of invalidVersions) {
      expect(seen.ingress.has(String(n)) || seen.egress.has(String(n)), `version ${n} is invalid`).toBe(false);
    }
    expect((await reloads(admin, 'failure')) - failuresBefore).toBeGreaterThanOrEqual(invalidVersions.length);
    expect(await versionAt(`${ingressUrl}/probe`)).toBe(String(STEPS));
    const active = (await (await request(`${admin}/config`)).body.json()) as { hash: string; source: string };
    expect(active).toMatchObject({ hash: createHash('sha256').update(readFileSync(sidecar.file)).digest('hex'), source: sidecar.file });
    const lastGood = await request(`${admin}/metrics`);
    const metrics = await lastGood.body.text();
    const stamp = Number(/^sidecar_config_last_reload_success_timestamp_seconds (\S+)$/m.exec(metrics)?.[1]);
    expect(stamp).toBeGreaterThanOrEqual(startedSeconds);
  });
});
