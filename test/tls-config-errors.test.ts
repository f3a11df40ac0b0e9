/**
 * TLS files in config errors (issue 17): a missing file, a key that does not
 * match its certificate, a CA that does not parse: each is one line with the
 * config file, line, column and key path, from `check` and at start alike.
 * An expired certificate is a warning in `check` and an error at start,
 * unless `allowExpired` is set.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatConfigError, loadConfigFile } from '../src/config/load.ts';
import { spawnSidecar } from './helpers/process.ts';
import { tempDir } from './helpers/reload.ts';
import { TestCa, type IssuedCert } from './helpers/tls.ts';

describe('TLS files in config errors', () => {
  let ca: TestCa;
  let good: IssuedCert;
  let other: IssuedCert;
  let expired: IssuedCert;
  let dir: string;

  beforeAll(() => {
    ca = new TestCa();
    good = ca.issue('localhost');
    other = ca.issue('other.test');
    expired = ca.issue('old.test', { expired: true });
    dir = tempDir();
    writeFileSync(join(dir, 'garbage.pem'), '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
  });
  afterAll(() => ca?.remove());

  function configFile(name: string, yaml: string): string {
    const file = join(dir, name);
    writeFileSync(file, yaml);
    return file;
  }

  it('check reports a mismatched key, a missing file and an unparsable CA with line, column and key path', async () => {
    const file = configFile(
      'broken.yaml',
      `admin: { listen: 127.0.0.1:0 }
upstreams:
  app:
    endpoints: [https://127.0.0.1:7443]
    tls: { ca: ./garbage.pem, cert: ${good.certFile}, key: ${other.keyFile} }
ingress:
  listen: 127.0.0.1:0
  tls:
    cert: ${good.certFile}
    key: ./missing.key
  routes: [ { match: { path: / }, upstream: app } ]
`,
    );
    const proc = await spawnSidecar(['check', '--config', file], { waitListening: false });
    expect(await proc.exited).toBe(1);
    const lines = proc.stderr().trim().split('\n');
    const keyColumn = `    tls: { ca: ./garbage.pem, cert: ${good.certFile}, key: `.length + 1;
    expect(lines).toEqual([
      expect.stringMatching(new RegExp(`^${file}:5:16 upstreams\\.app\\.tls\\.ca: CA file ${join(dir, 'garbage.pem')}: its certificate does not parse`)),
      `${file}:5:${keyColumn} upstreams.app.tls.key: key ${other.keyFile} does not match the certificate in ${good.certFile} (is it the key of another certificate?)`,
      `${file}:10:10 ingress.tls.key: cannot read key file ${join(dir, 'missing.key')}: it does not exist`,
      `sidecar: ${file}: 3 errors, not started`,
    ]);
  });

  it('an expired certificate: a warning in check, an error at start, and allowed with allowExpired', async () => {
    const yaml = (allow: boolean) => `admin: { listen: 127.0.0.1:0 }
log: { level: warn }
upstreams: { app: { endpoints: [http://127.0.0.1:7001] } }
ingress:
  listen: 127.0.0.1:0
  tls: { cert: ${expired.certFile}, key: ${expired.keyFile}${allow ? ', allowExpired: true' : ''} }
  routes: [ { match: { path: / }, upstream: app } ]
`;
    const file = configFile('expired.yaml', yaml(false));
    const message = `certificate ${expired.certFile} expired on 2020-01-02T00:00:00.000Z`;

    const check = await spawnSidecar(['check', '--config', file], { waitListening: false });
    expect(await check.exited).toBe(0);
    expect(check.stderr()).toContain(`${file}:6:16 ingress.tls.cert: warning: ${message}`);

    const run = await spawnSidecar(['--config', file], { waitListening: false });
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toContain(`${file}:6:16 ingress.tls.cert: ${message}`);

    const allowed = await loadConfigFile(configFile('allowed.yaml', yaml(true)));
    expect(allowed.ok).toBe(true);
    expect((allowed.warnings ?? []).map(formatConfigError)).toEqual([expect.stringContaining(`ingress.tls.cert: warning: ${message}`)]);
  });

  it('client certificates need a CA, the client certificate header cannot be one the sidecar sets, ciphers must be known', async () => {
    const file = configFile(
      'client-auth.yaml',
      `upstreams: { app: { endpoints: [http://127.0.0.1:7001] } }
ingress:
  tls: { cert: ${good.certFile}, key: ${good.keyFile}, clientAuth: require, forwardClientCert: X-Forwarded-For, ciphers: NO-SUCH-CIPHER }
  routes: [ { match: { path: / }, upstream: app } ]
`,
    );
    const result = await loadConfigFile(file);
    expect(result.ok ? [] : result.errors.map((error) => `${error.path}: ${error.message}`)).toEqual([
      'ingress.tls.clientAuth: clientAuth: require needs ca (the CA file client certificates must chain to)',
      'ingress.tls.forwardClientCert: x-forwarded-for is a header the sidecar sets itself: name another (e.g. x-client-cert)',
      'ingress.tls.ciphers: OpenSSL knows no cipher in "NO-SUCH-CIPHER" (see `openssl ciphers -v`)',
    ]);
  });
});
