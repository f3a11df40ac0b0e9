/**
 * HTTPS with `workers: 2` (issue 17): each worker loads and watches the
 * certificates itself, both serve HTTPS, a rotation reaches both, and the
 * primary's GET /certs (which serves no traffic) answers with what its
 * workers have loaded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { closedPort, startHttpServer, type TestServer } from './helpers/servers.ts';
import { spawnSidecar, type SidecarProcess } from './helpers/process.ts';
import { renameReplace, waitFor } from './helpers/reload.ts';
import { servedCertificate, TestCa, type IssuedCert } from './helpers/tls.ts';

describe('HTTPS with workers', () => {
  let ca: TestCa;
  let first: IssuedCert;
  let second: IssuedCert;
  let app: TestServer;
  let sidecar: SidecarProcess;
  let dir: string;
  let port: number;

  beforeAll(async () => {
    ca = new TestCa();
    first = ca.issue('localhost', { ips: ['127.0.0.1'] });
    second = ca.issue('localhost', { ips: ['127.0.0.1'] });
    app = await startHttpServer((req, res) => {
      req.resume();
      res.end(String(process.pid));
    });
    dir = mkdtempSync(join(tmpdir(), 'sidecar-tls-workers-'));
    writeFileSync(join(dir, 'tls.crt'), first.cert);
    writeFileSync(join(dir, 'tls.key'), first.key);
    port = await closedPort();
    writeFileSync(
      join(dir, 'sidecar.yaml'),
      `
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: true }
workers: 2
upstreams: { app: { endpoints: [${app.url}] } }
ingress:
  listen: 127.0.0.1:${port}
  tls: { cert: ./tls.crt, key: ./tls.key }
  routes: [ { match: { path: / }, upstream: app } ]
`,
    );
    sidecar = await spawnSidecar(['--config', join(dir, 'sidecar.yaml')]);
  });
  afterAll(async () => {
    await sidecar?.stop();
    await app?.close();
    ca?.remove();
  });

  it('both workers serve HTTPS, a rotation reaches both, and the primary lists the certificate', async () => {
    // Each request on a new connection, so the kernel spreads them over the workers; access lines say which served.
    for (let i = 0; i < 30; i++) {
      const agent = new Agent({ connect: { ca: ca.ca } });
      const response = await request(`https://127.0.0.1:${port}/n${i}`, { dispatcher: agent });
      expect(response.statusCode).toBe(200);
      await response.body.dump();
      await agent.close();
    }
    const pids = () => new Set(sidecar.lines.filter((line) => line.log === 'access').map((line) => line.pid));
    await waitFor('access lines from both workers', () => (pids().size === 2 ? true : undefined), 5_000, 50);

    const certs = JSON.parse(await (await request(`http://127.0.0.1:${sidecar.adminPort}/certs`)).body.text()) as { certificates: Array<Record<string, unknown>> };
    expect(certs.certificates).toEqual([expect.objectContaining({ listener: 'ingress', use: 'default', sha256: first.fingerprint })]);

    renameReplace(join(dir, 'tls.crt'), second.cert);
    renameReplace(join(dir, 'tls.key'), second.key);
    // Each worker watches for itself: only when every new connection gets the new certificate have both swapped.
    await waitFor(
      'the new certificate from both workers',
      async () => {
        const seen = new Set<string>();
        for (let i = 0; i < 20; i++) seen.add(await servedCertificate(port, ca.ca));
        return seen.size === 1 && seen.has(second.fingerprint) ? true : undefined;
      },
      5_000,
      100,
    );
  });
});
