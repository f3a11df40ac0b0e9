/**
 * With `workers: N` the admin port lives in the primary and each worker binds
 * the ingress and egress listeners (SO_REUSEPORT). Every worker must count the
 * primary's admin address and every listener of every worker as its own:
 * before, a worker's egress forwarded `POST /reload` to the admin port. A real
 * multi-process sidecar (the CLI with `workers: 2`); each request on a new
 * connection, so the kernel spreads them over both workers, and the access
 * lines show that both refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { request } from 'undici';
import { closedPort } from './helpers/servers.ts';
import { accessLines, eventually, proxiedRequest } from './helpers/egress.ts';
import { rawExchange } from './helpers/raw.ts';
import { spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';

/** Requests per check: enough that both workers take some (the kernel hashes each new connection). */
const TRIES = 24;

describe('egress loop guard with workers', () => {
  let sidecar: SidecarProcess;
  let file: string;
  let admin: number;
  let adminAt = '127.0.0.1';
  let ingress: number;
  let egress: number;

  const config = (adminPort: number, adminHost = '127.0.0.1') => `
admin: { listen: "${adminHost}:${adminPort}" }
log: { level: info, access: true }
workers: 2
ingress:
  listen: 127.0.0.1:${ingress}
  routes: []
egress:
  listen: 127.0.0.1:${egress}
  routes:
    - { name: anywhere, match: { host: "*" }, allowLoopback: true }
`;

  beforeAll(async () => {
    [admin, ingress, egress] = [await closedPort(), await closedPort(), await closedPort()];
    file = writeConfig(config(admin));
    sidecar = await spawnSidecar(['--config', file]);
  });
  afterAll(async () => {
    await sidecar?.stop();
  });

  async function successfulReloads(): Promise<number> {
    const text = await (await request(`http://${adminAt}:${admin}/metrics`)).body.text();
    const line = text.split('\n').find((l) => l.startsWith('sidecar_config_reloads_total{result="success"}'));
    return Number(line?.split(' ').pop() ?? 0);
  }

  /** The pids that wrote the access lines of the requests tagged `tag` (once all `count` are in). */
  async function pidsOf(tag: string, count: number): Promise<Set<unknown>> {
    const tagged = () => accessLines(sidecar.lines).filter((line) => String(line.reqId).startsWith(tag));
    // Access lines are written in batches, at most 200 ms late.
    const lines = await eventually(() => (tagged().length >= count ? tagged() : undefined), 10_000);
    expect(lines.every((line) => line.error === 'destination_denied')).toBe(true);
    return new Set(lines.map((line) => line.pid));
  }

  async function expectAdminRefused(adminPort: number, adminHost = '127.0.0.1'): Promise<void> {
    const tag = `admin-${adminPort}-`;
    for (let i = 0; i < TRIES; i++) {
      const headers = { 'x-request-id': `${tag}${i}` };
      const response = await proxiedRequest(egress, `http://${adminHost}:${adminPort}/reload`, { method: 'POST', headers });
      expect(response.status, `try ${i}`).toBe(403);
      expect(response.headers['x-sidecar-error']).toBe('destination_denied');
      expect(JSON.parse(response.body).message).toMatch(/loop/);
      const authority = `${adminHost}:${adminPort}`;
      const reload = 'POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n';
      const tunnel = await rawExchange(egress, `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\nX-Request-Id: ${tag}c${i}\r\n\r\n${reload}`);
      expect(tunnel, `CONNECT try ${i}`).toMatch(/^HTTP\/1\.1 403 [^]*loop/);
    }
    const pids = await pidsOf(tag, 2 * TRIES);
    expect(pids.size).toBe(2); // both workers refused
    expect(pids.has(sidecar.child.pid)).toBe(false);
  }

  it("refuses the primary's admin port through every worker's egress (absolute-form and CONNECT)", async () => {
    const before = await successfulReloads();
    await expectAdminRefused(admin);
    expect(await successfulReloads()).toBe(before);
  });

  it("refuses the workers' own listeners through egress", async () => {
    for (let i = 0; i < TRIES; i++) {
      for (const port of [ingress, egress]) {
        const response = await proxiedRequest(egress, `http://127.0.0.1:${port}/`);
        expect(response.status, String(port)).toBe(403);
        expect(JSON.parse(response.body).message).toMatch(/is this sidecar's own listener/);
      }
    }
  });

  it('follows the admin port to its new address after a reload, as the primary bound it', async () => {
    // `localhost` is a name: a worker cannot tell from its config which address the primary bound,
    // only from what the primary reports.
    const moved = await closedPort();
    writeFileSync(file, config(moved, 'localhost'));
    const reload = await request(`http://127.0.0.1:${admin}/reload`, { method: 'POST' });
    expect(reload.statusCode, await reload.body.text()).toBe(200);
    admin = moved;
    adminAt = 'localhost';
    const before = await successfulReloads();
    await expectAdminRefused(moved, 'localhost');
    expect(await successfulReloads()).toBe(before);
  });
});
