/**
 * SNI on ingress (issue 17): each name gets its own certificate (checked by
 * the certificate the client saw): an exact name first, then a one-label
 * wildcard, else the default. A reload replaces the map whole: a name taken
 * out gets the default again (`server.addContext` would have kept it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { request } from 'undici';
import { clientEnv, run } from './helpers/egress.ts';
import { metric } from './helpers/reload.ts';
import { echoServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { servedCertificate, TestCa, type IssuedCert } from './helpers/tls.ts';

describe('SNI on ingress', () => {
  let ca: TestCa;
  let fallback: IssuedCert;
  let api: IssuedCert;
  let apps: IssuedCert;
  let api2: IssuedCert;
  let app: TestServer;
  let sidecar: RunningSidecar;
  let port: number;

  const config = (sni: string) => `${TEST_BASE}
upstreams: { app: { endpoints: [${app.url}] } }
ingress:
  listen: 127.0.0.1:0
  tls:
    cert: ${fallback.certFile}
    key: ${fallback.keyFile}
    sni:
${sni}
  routes: [ { match: { path: / }, upstream: app } ]
`;

  beforeAll(async () => {
    ca = new TestCa();
    fallback = ca.issue('default.test', { dns: ['default.test'], ips: ['127.0.0.1'] });
    api = ca.issue('api.example.test');
    apps = ca.issue('*.apps.example.test');
    api2 = ca.issue('api.example.test');
    app = await echoServer();
    sidecar = await startSidecar(
      config(`      - { serverNames: [api.example.test], cert: ${api.certFile}, key: ${api.keyFile} }
      - { serverNames: ["*.apps.example.test"], cert: ${apps.certFile}, key: ${apps.keyFile} }`),
    );
    port = sidecar.sidecar.ingressPort!;
  });
  afterAll(async () => {
    await sidecar?.close();
    await app?.close();
    ca?.remove();
  });

  it('an exact name, then a one-label wildcard, else the default certificate', async () => {
    const cases: Array<[string | undefined, IssuedCert]> = [
      ['api.example.test', api],
      ['API.Example.TEST', api],
      ['one.apps.example.test', apps],
      ['two.apps.example.test', apps],
      // One label only, as certificates match: neither the apex nor two labels deep.
      ['apps.example.test', fallback],
      ['a.b.apps.example.test', fallback],
      ['unknown.test', fallback],
      [undefined, fallback],
    ];
    for (const [name, expected] of cases) expect(await servedCertificate(port, ca.ca, name), String(name)).toBe(expected.fingerprint);
  });

  it('curl reaches the app under each name, verifying the certificate it gets', async () => {
    for (const name of ['api.example.test', 'one.apps.example.test']) {
      const result = await run('curl', ['-sS', '--cacert', ca.caFile, '--resolve', `${name}:${port}:127.0.0.1`, `https://${name}:${port}/sni`], clientEnv());
      expect(result.stderr, name).toBe('');
      expect(JSON.parse(result.stdout), name).toMatchObject({ url: '/sni', headers: { host: `${name}:${port}`, 'x-forwarded-proto': 'https' } });
    }
  });

  it('a reload replaces the map whole: a removed name gets the default, a changed one its new certificate', async () => {
    writeFileSync(sidecar.file, config(`      - { serverNames: [api.example.test], cert: ${api2.certFile}, key: ${api2.keyFile} }`));
    const reload = await request(sidecar.admin('/reload'), { method: 'POST' });
    expect(reload.statusCode, await reload.body.text()).toBe(200);
    expect(await servedCertificate(port, ca.ca, 'api.example.test')).toBe(api2.fingerprint);
    expect(await servedCertificate(port, ca.ca, 'one.apps.example.test')).toBe(fallback.fingerprint);
    expect(await servedCertificate(port, ca.ca)).toBe(fallback.fingerprint);
  });

  it('a reload with a key of another certificate is refused whole, counted as a TLS reload failure, and the map stays', async () => {
    const admin = sidecar.admin('').replace(/\/$/, '');
    const failures = () => metric(admin, 'sidecar_tls_reloads_total', '{listener="ingress",upstream="",result="failure"}');
    const before = await failures();
    writeFileSync(sidecar.file, config(`      - { serverNames: [api.example.test], cert: ${api.certFile}, key: ${apps.keyFile} }`));
    const reload = await request(sidecar.admin('/reload'), { method: 'POST' });
    expect(reload.statusCode).toBe(400);
    expect(JSON.stringify(await reload.body.json())).toContain('ingress.tls.sni[0].key: key');
    expect(await failures()).toBe(before + 1);
    expect(await servedCertificate(port, ca.ca, 'api.example.test')).toBe(api2.fingerprint);
  });
});
