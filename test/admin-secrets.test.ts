/**
 * Secrets planted through `${VAR}` (a header rule value, an app.env value, the
 * egress password, the query of app.ready.url and of an endpoint URL) reach
 * the places they are for (the upstream, the app, the 407 check) and no
 * other: not one admin answer, not one line of stdout or stderr of a real
 * sidecar process, through traffic, a failing reload and every admin path.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { request } from 'undici';
import { closedPort, echoServer, type TestServer } from './helpers/servers.ts';
import { spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';
import { proxiedRequest } from './helpers/egress.ts';
import { waitFor } from './helpers/reload.ts';

const secret = (what: string) => `${what}-${randomBytes(8).toString('hex')}`;
const SECRETS = {
  HEADER_VALUE: secret('hdr'),
  APP_NOTE: secret('note'),
  PROXY_PASSWORD: secret('pw'),
  READY_KEY: secret('ready'),
  ENDPOINT_KEY: secret('endpoint'),
};
const basic = (password: string) => `Basic ${Buffer.from(`app:${password}`).toString('base64')}`;

/** An app that says its APP_NOTE on /note and is ready at once. */
const APP = `
const http = require('node:http');
process.on('SIGTERM', () => process.exit(0));
http.createServer((req, res) => res.end(req.url === '/note' ? process.env.APP_NOTE : 'ready')).listen(Number(process.env.APP_PORT), '127.0.0.1');
`;

function leaks(text: string): string[] {
  return Object.entries(SECRETS)
    .filter(([, value]) => text.includes(value))
    .map(([name]) => name);
}

describe('secrets from ${VAR} are shown nowhere', () => {
  let echo: TestServer;
  let sidecar: SidecarProcess;
  let file: string;
  let appPort: number;
  const bodies: string[] = [];

  const config = (extra: { balance?: string; connections?: string; endpointQuery?: boolean } = {}) => `
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: true }
app:
  command: [${JSON.stringify(process.execPath)}, app.cjs]
  env: { APP_PORT: "${appPort}", APP_NOTE: "\${APP_NOTE}" }
  ready: { url: "http://127.0.0.1:${appPort}/ready?key=\${READY_KEY}", timeout: 10s, interval: 50ms }
upstreams:
  echo:
    endpoints: ["http://\${ECHO_HOST}:${echo.port}"${extra.endpointQuery ? ', "http://127.0.0.1:1/?key=${ENDPOINT_KEY}"' : ''}]
${extra.balance ? `    balance: "${extra.balance}"\n` : ''}${extra.connections ? `    connections: "${extra.connections}"\n` : ''}  app: { endpoints: ["http://127.0.0.1:${appPort}"] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: echo, match: { path: /echo }, upstream: echo, headers: { request: { add: { x-upstream-key: "\${HEADER_VALUE}" } } } }
    - { name: app, match: { path: / }, upstream: app }
egress:
  listen: 127.0.0.1:0
  auth: { user: app, password: "\${PROXY_PASSWORD}" }
  routes:
    - { match: { host: echo.internal }, upstream: echo }
`;

  async function admin(path: string, method: 'GET' | 'POST' = 'GET'): Promise<{ status: number; text: string }> {
    const response = await request(`http://127.0.0.1:${sidecar.adminPort}${path}`, { method });
    const text = await response.body.text();
    bodies.push(`${method} ${path}: ${text}`);
    return { status: response.statusCode, text };
  }

  beforeAll(async () => {
    echo = await echoServer();
    appPort = await closedPort();
    file = writeConfig(config());
    writeFileSync(join(dirname(file), 'app.cjs'), APP);
    // ECHO_HOST is no secret, but it came from ${VAR}: shown as [redacted] too.
    sidecar = await spawnSidecar(['--config', file], { env: { ...SECRETS, ECHO_HOST: '127.0.0.1' } });
  });
  afterAll(async () => {
    await sidecar?.stop();
    await echo?.close();
  });

  it('uses each secret where it belongs', async () => {
    await waitFor('the app to be ready', async () => ((await admin('/readyz')).status === 200 ? true : undefined), 10_000, 50);
    const viaIngress = await request(`http://127.0.0.1:${sidecar.ingressPort}/echo/a?b=c`);
    expect(viaIngress.statusCode).toBe(200);
    expect(((await viaIngress.body.json()) as { headers: Record<string, string> }).headers['x-upstream-key']).toBe(SECRETS.HEADER_VALUE);
    const note = await request(`http://127.0.0.1:${sidecar.ingressPort}/note`);
    expect(await note.body.text()).toBe(SECRETS.APP_NOTE);
    const allowed = await proxiedRequest(sidecar.egressPort!, 'http://echo.internal/x', { headers: { 'proxy-authorization': basic(SECRETS.PROXY_PASSWORD) } });
    expect(allowed.status).toBe(200);
    const denied = await proxiedRequest(sidecar.egressPort!, 'http://echo.internal/x', { headers: { 'proxy-authorization': basic('wrong') } });
    expect(denied.status).toBe(407);
  });

  it('a reload refused for errors that quote the values says [redacted] instead', async () => {
    writeFileSync(file, config({ balance: '${HEADER_VALUE}', connections: '${PROXY_PASSWORD}', endpointQuery: true }));
    const reload = await admin('/reload', 'POST');
    expect(reload.status).toBe(400);
    const errors = (JSON.parse(reload.text) as { errors: string[] }).errors;
    expect(errors.find((error) => error.includes('upstreams.echo.balance'))).toContain('[redacted]');
    expect(errors.find((error) => error.includes('upstreams.echo.connections'))).toContain('[redacted]');
    expect(errors.some((error) => error.includes('upstreams.echo.endpoints[1]'))).toBe(true);
    await waitFor('the refusal in the log', () => (sidecar.lines.some((line) => String(line.msg).startsWith('config reload refused')) ? true : undefined));
  });

  it('every admin path answers without a secret; /config shows [redacted] where they stand', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics', '/upstreams', '/nope', '/reload']) expect((await admin(path)).status).toBeLessThan(500);
    const shown = JSON.parse((await admin('/config')).text) as { config: Record<string, any> };
    expect(shown.config.ingress.routes[0].headers.request.add['x-upstream-key']).toBe('[redacted]');
    expect(shown.config.app.env).toEqual({ APP_PORT: '[redacted]', APP_NOTE: '[redacted]' });
    expect(shown.config.app.ready.url).toBe(`http://127.0.0.1:${appPort}/ready?[redacted]`);
    expect(shown.config.egress.auth.password).toBe('[redacted]');
    const upstreams = JSON.parse((await admin('/upstreams')).text) as { upstreams: Record<string, { endpoints: Array<{ url: string }> }> };
    expect(upstreams.upstreams.echo.endpoints[0].url).toBe(`http://[redacted]:${echo.port}`);
    expect(leaks(bodies.join('\n'))).toEqual([]);
  });

  it('no line of stdout or stderr holds a secret, start to exit', async () => {
    expect(await sidecar.stop('SIGTERM')).toBe(0);
    const stdout = sidecar.lines.map((line) => JSON.stringify(line)).join('\n');
    const access = sidecar.lines.filter((line) => line.log === 'access');
    expect(access.length).toBeGreaterThanOrEqual(4);
    expect(access.find((line) => line.route === 'echo')?.endpoint).toBe(`[redacted]:${echo.port}`);
    expect(stdout).toContain('config reload refused');
    expect(leaks(stdout)).toEqual([]);
    expect(leaks(sidecar.stderr())).toEqual([]);
  });

  it('nor the line that says the app is not ready in time, which names the ready URL', async () => {
    const waiting = await spawnSidecar(
      [
        '--config',
        writeConfig(`
admin: { listen: 127.0.0.1:0 }
app:
  command: [${JSON.stringify(process.execPath)}, -e, "setTimeout(() => {}, 60000)"]
  ready: { url: "http://127.0.0.1:${await closedPort()}/ready?key=\${READY_KEY}", timeout: 200ms, interval: 50ms }
`),
      ],
      { env: SECRETS },
    );
    try {
      const line = await waitFor('the not-ready line', () => waiting.lines.find((each) => String(each.msg).startsWith('app did not become ready')), 10_000, 50);
      expect(String(line.url)).toMatch(/\/ready\?\[redacted\]$/);
    } finally {
      await waiting.stop();
    }
    expect(leaks(JSON.stringify(waiting.lines) + waiting.stderr())).toEqual([]);
  });
});
