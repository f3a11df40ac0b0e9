/**
 * The status page lists the TLS certificates in use (issue 17 on the status
 * page of issue 20): the ingress certificate and an upstream's client
 * certificate and CA, each with whose it is, what for, its names and the days
 * it has left, in /status.json and as a table in the HTML; the same list as
 * admin GET /certs, never a key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { echoServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { TestCa, type IssuedCert } from './helpers/tls.ts';

interface Certificate {
  owner: string;
  use: string;
  subject: string;
  sans: string[];
  daysLeft: number;
  sha256: string;
  file: string;
}

describe('status: certificates', () => {
  let ca: TestCa;
  let served: IssuedCert;
  let client: IssuedCert;
  let app: TestServer;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    ca = new TestCa();
    served = ca.issue('localhost', { dns: ['localhost'], ips: ['127.0.0.1'] });
    client = ca.issue('sidecar-client', { client: true });
    app = await echoServer();
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  app: { endpoints: [${app.url}] }
  payments: { endpoints: [https://127.0.0.1:1], tls: { ca: ${ca.caFile}, cert: ${client.certFile}, key: ${client.keyFile} } }
ingress:
  listen: 127.0.0.1:0
  tls: { cert: ${served.certFile}, key: ${served.keyFile} }
  routes: [ { match: { path: / }, upstream: app } ]
`);
  });
  afterAll(async () => {
    await sidecar?.close();
    await app?.close();
    ca?.remove();
  });

  it('/status.json lists the served certificate, the upstream client certificate and its CA, as GET /certs does', async () => {
    const status = (await (await request(sidecar.admin('/status.json'))).body.json()) as { certificates: Certificate[] };
    const byFile = new Map(status.certificates.map((certificate) => [certificate.file, certificate]));
    expect(byFile.get(served.certFile)).toMatchObject({ owner: 'ingress', use: 'default', subject: 'CN=localhost', sans: ['DNS:localhost', 'IP:127.0.0.1'], sha256: served.fingerprint });
    expect(byFile.get(client.certFile)).toMatchObject({ owner: 'upstream payments', use: 'client', subject: 'CN=sidecar-client', sha256: client.fingerprint });
    expect(byFile.get(ca.caFile)).toMatchObject({ owner: 'upstream payments', use: 'ca', subject: 'CN=sidecar test CA' });
    for (const certificate of status.certificates) expect(certificate.daysLeft).toBeGreaterThanOrEqual(0);

    const certs = (await (await request(sidecar.admin('/certs'))).body.json()) as { certificates: Array<{ sha256: string }> };
    expect(status.certificates.map((certificate) => certificate.sha256).sort()).toEqual(certs.certificates.map((certificate) => certificate.sha256).sort());
    expect(JSON.stringify(status)).not.toContain('PRIVATE KEY');
  });

  it('the HTML page shows them in a table of their own', async () => {
    const html = await (await request(sidecar.admin('/'))).body.text();
    const section = html.slice(html.indexOf('<h2>Certificates</h2>'));
    expect(section).toContain(`data-certificate="${served.fingerprint}"`);
    expect(section).toContain(`data-certificate="${client.fingerprint}"`);
    expect(section).toContain('<code>CN=localhost</code>');
    expect(section).toContain('upstream payments');
    expect(html).not.toContain('none (no TLS files configured)');
  });
});
