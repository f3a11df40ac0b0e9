/**
 * `egress.auth`: Proxy-Authorization Basic, 407 with Proxy-Authenticate
 * otherwise (absolute-form and CONNECT), the header consumed and never
 * forwarded, and the password in no log line and not in GET /config.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { echoServer, type TestServer } from './helpers/servers.ts';
import { spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';
import { clientEnv, eventually, openConnect, proxiedRequest, run } from './helpers/egress.ts';

const USER = 'app';
const PASSWORD = 's3cret-Pa55word';
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('egress proxy authentication', () => {
  let echo: TestServer;
  let sidecar: SidecarProcess;
  let proxy: number;

  beforeAll(async () => {
    echo = await echoServer();
    const file = writeConfig(`
admin: { listen: 127.0.0.1:0 }
log: { level: trace, access: true }
upstreams:
  payments: { endpoints: [${echo.url}] }
egress:
  listen: 127.0.0.1:0
  auth: { user: ${USER}, password: "\${EGRESS_PASSWORD}" }
  routes:
    - { name: payments, match: { host: payments.internal }, upstream: payments }
`);
    sidecar = await spawnSidecar(['--config', file], { env: { EGRESS_PASSWORD: PASSWORD } });
    proxy = sidecar.egressPort!;
  });
  afterAll(async () => {
    await sidecar?.stop();
    await echo.close();
  });

  it('answers 407 with Proxy-Authenticate without credentials, or with wrong ones', async () => {
    for (const header of [undefined, basic(USER, 'wrong'), basic('someone', PASSWORD), 'Bearer abc', 'Basic !!!']) {
      const response = await proxiedRequest(proxy, 'http://payments.internal/x', { headers: header ? { 'proxy-authorization': header } : {} });
      expect(response.status, String(header)).toBe(407);
      expect(response.headers['proxy-authenticate']).toBe('Basic realm="sidecar"');
      expect(response.headers['x-sidecar-error']).toBe('proxy_auth_required');
    }
  });

  it('forwards with the right credentials and never passes Proxy-Authorization on', async () => {
    const response = await proxiedRequest(proxy, 'http://payments.internal/ok', { headers: { 'proxy-authorization': basic(USER, PASSWORD) } });
    expect(response.status).toBe(200);
    const seen = JSON.parse(response.body);
    expect(seen.url).toBe('/ok');
    expect(seen.headers['proxy-authorization']).toBeUndefined();
    expect(JSON.stringify(seen)).not.toContain(Buffer.from(`${USER}:${PASSWORD}`).toString('base64'));
  });

  it('asks a CONNECT for credentials too; requests inside an authenticated tunnel need none', async () => {
    const refused = await openConnect(proxy, 'payments.internal:80');
    expect(refused.status).toBe(407);
    expect(refused.response).toMatch(/proxy-authenticate: Basic realm="sidecar"/i);

    const tunnel = await openConnect(proxy, 'payments.internal:80', { 'Proxy-Authorization': basic(USER, PASSWORD) });
    expect(tunnel.status).toBe(200);
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      tunnel.socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      tunnel.socket.once('close', () => resolve(text));
      tunnel.socket.resume();
      tunnel.socket.write('GET /inside HTTP/1.1\r\nHost: payments.internal\r\nConnection: close\r\n\r\n');
    });
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toContain('"url":"/inside"');
  });

  it('works with curl -x http://user:password@...', async () => {
    const result = await run('curl', ['-sS', '-x', `http://${USER}:${PASSWORD}@127.0.0.1:${proxy}`, 'http://payments.internal/curl'], clientEnv());
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).url).toBe('/curl');
  });

  it('never shows the password: not in any log line, not in GET /config', async () => {
    // Access lines are written in batches (at most 200 ms late): wait for the egress ones first.
    await eventually(() => (sidecar.lines.some((line) => line.log === 'access' && line.listener === 'egress') ? true : undefined));
    const config = await (await request(`http://127.0.0.1:${sidecar.adminPort}/config`)).body.text();
    expect(config).not.toContain(PASSWORD);
    expect(JSON.parse(config).config.egress.auth).toEqual({ user: USER, password: '[redacted]' });
    const encoded = Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
    const everything = JSON.stringify(sidecar.lines) + sidecar.stderr();
    expect(everything).not.toContain(PASSWORD);
    expect(everything).not.toContain(encoded);
    expect(sidecar.lines.some((line) => line.log === 'access' && line.listener === 'egress')).toBe(true);
  });
});
