/**
 * Certificate rotation without a restart (issue 17): while keep-alive clients
 * send requests without pause, the ingress certificate files are replaced
 * three times, as real deployments do it: an in-place edit, a rename over the
 * file, and the Kubernetes Secret `..data` symlink swap. No request fails,
 * and a new connection sees each new certificate within 3 s. A broken
 * replacement (the key of another certificate) keeps the old certificate
 * serving, and the failure is in the metric and the log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { spawnSidecar, type SidecarProcess } from './helpers/process.ts';
import { ConfigMapDir, metric, renameReplace, tempDir, waitFor } from './helpers/reload.ts';
import { servedCertificate, TestCa, type IssuedCert } from './helpers/tls.ts';

const ROTATION_DEADLINE_MS = 3_000;

describe('ingress certificate rotation under load', () => {
  let ca: TestCa;
  let app: TestServer;
  let sidecar: SidecarProcess;
  let secret: ConfigMapDir;
  let certs: IssuedCert[];
  let other: IssuedCert;

  beforeAll(async () => {
    ca = new TestCa();
    // The initial certificate, one per swap, and one whose key is the broken replacement.
    certs = [0, 1, 2, 3].map(() => ca.issue('localhost', { dns: ['localhost'], ips: ['127.0.0.1'] }));
    other = ca.issue('other.test');
    app = await startHttpServer((req, res) => {
      req.resume();
      res.end('ok');
    });
    const dir = tempDir();
    mkdirSync(join(dir, 'secret'));
    secret = new ConfigMapDir(join(dir, 'secret'), 'tls.crt');
    secret.kubeletUpdateFiles({ 'tls.crt': certs[0].cert, 'tls.key': certs[0].key });
    const config = join(dir, 'sidecar.yaml');
    writeFileSync(
      config,
      `
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: false }
upstreams: { app: { endpoints: [${app.url}] } }
ingress:
  listen: 127.0.0.1:0
  tls: { cert: ./secret/tls.crt, key: ./secret/tls.key }
  routes: [ { match: { path: / }, upstream: app } ]
`,
    );
    sidecar = await spawnSidecar(['--config', config]);
  });
  afterAll(async () => {
    await sidecar?.stop();
    await app?.close();
    ca?.remove();
  });

  it('swaps in place, by rename and by ..data, with no failed request; a broken set keeps the old certificate', async () => {
    const port = sidecar.ingressPort!;
    const admin = `http://127.0.0.1:${sidecar.adminPort}`;
    const crt = join(secret.dir, 'tls.crt');
    const key = join(secret.dir, 'tls.key');
    expect(await servedCertificate(port, ca.ca)).toBe(certs[0].fingerprint);

    const pool = new Pool(`https://127.0.0.1:${port}`, { connections: 4, connect: { ca: ca.ca } });
    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    const client = async () => {
      for (let i = 0; i < 1_000_000 && !stop; i++) {
        try {
          const response = await pool.request({ path: '/', method: 'GET' });
          const body = await response.body.text();
          if (response.statusCode === 200 && body === 'ok') ok++;
          else failures.push(`${response.statusCode} ${body}`);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    };
    const clients = [client(), client(), client(), client()];
    const served = async (expected: IssuedCert, what: string) => {
      const before = ok;
      await waitFor(`the ${what} certificate on a new connection`, async () => ((await servedCertificate(port, ca.ca)) === expected.fingerprint ? true : undefined), ROTATION_DEADLINE_MS, 100);
      // The keep-alive clients went on meanwhile.
      await waitFor('requests after the swap', () => (ok > before ? true : undefined), 5_000);
    };

    try {
      await waitFor('load', () => (ok >= 20 ? true : undefined), 10_000);
      // 1. In place: the files are rewritten (through the Secret's symlinks, into the current revision).
      writeFileSync(crt, certs[1].cert);
      writeFileSync(key, certs[1].key);
      await served(certs[1], 'edited');
      // 2. The Kubernetes Secret update: a new revision, and `..data` renamed to point at it.
      secret.kubeletUpdateFiles({ 'tls.crt': certs[2].cert, 'tls.key': certs[2].key });
      await served(certs[2], '..data');
      // 3. An atomic rename over each file (what cert-manager's and most tools' writers do).
      renameReplace(crt, certs[3].cert);
      renameReplace(key, certs[3].key);
      await served(certs[3], 'renamed');

      // A broken replacement: the key of another certificate.
      const failuresBefore = await metric(admin, 'sidecar_tls_reloads_total', '{listener="ingress",upstream="",result="failure"}');
      renameReplace(key, other.key);
      await waitFor(
        'the refused reload in the metric',
        async () => ((await metric(admin, 'sidecar_tls_reloads_total', '{listener="ingress",upstream="",result="failure"}')) > failuresBefore ? true : undefined),
        ROTATION_DEADLINE_MS,
        100,
      );
      expect(await servedCertificate(port, ca.ca)).toBe(certs[3].fingerprint);
      const refused = sidecar.lines.find((line) => line.level === 'error' && line.file === key && typeof line.reason === 'string');
      expect(refused?.reason).toContain('does not match the certificate');
      const before = ok;
      await waitFor('requests after the refused set', () => (ok > before ? true : undefined), 5_000);
    } finally {
      stop = true;
      await Promise.all(clients);
      await pool.close();
    }
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(20);
    expect(await metric(admin, 'sidecar_tls_reloads_total', '{listener="ingress",upstream="",result="success"}')).toBeGreaterThanOrEqual(3);
  });
});
