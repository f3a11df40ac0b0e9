/**
 * `admin.token`: with it set, POST /reload and the reads that show the config
 * and the upstreams need `Authorization: Bearer <token>` (401 with
 * WWW-Authenticate and a JSON body otherwise); probes and scrapers
 * (/healthz, /readyz, /metrics) stay open; the token is never shown.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { startSidecar, type RunningSidecar } from './helpers/sidecar.ts';
import { reloads } from './helpers/reload.ts';

const TOKEN = randomBytes(24).toString('base64url');

describe('admin.token', () => {
  let sidecar: RunningSidecar;
  let admin: string;

  beforeAll(async () => {
    process.env.SIDECAR_TEST_ADMIN_TOKEN = TOKEN;
    sidecar = await startSidecar(`
admin: { listen: 127.0.0.1:0, token: "\${SIDECAR_TEST_ADMIN_TOKEN}" }
log: { level: silent, access: false }
`);
    admin = sidecar.admin('').replace(/\/$/, '');
  });
  afterAll(async () => {
    await sidecar.close();
    delete process.env.SIDECAR_TEST_ADMIN_TOKEN;
  });

  async function ask(method: 'GET' | 'POST', path: string, authorization?: string) {
    const response = await request(`${admin}${path}`, { method, headers: authorization ? { authorization } : {} });
    return { status: response.statusCode, challenge: response.headers['www-authenticate'], text: await response.body.text() };
  }

  it('refuses a reload without the token, or with another one, with 401; nothing is reloaded', async () => {
    const before = await reloads(admin, 'success');
    for (const authorization of [undefined, 'Bearer wrong', `Bearer ${TOKEN}x`, `Basic ${TOKEN}`, `Bearer`, TOKEN]) {
      const answer = await ask('POST', '/reload', authorization);
      expect(answer.status, String(authorization)).toBe(401);
      expect(answer.challenge).toBe('Bearer realm="sidecar admin"');
      expect(JSON.parse(answer.text)).toMatchObject({ error: 'unauthorized' });
    }
    expect(await reloads(admin, 'success')).toBe(before);
  });

  it('reloads with the token', async () => {
    const before = await reloads(admin, 'success');
    expect((await ask('POST', '/reload', `Bearer ${TOKEN}`)).status).toBe(200);
    expect((await ask('POST', '/reload', `bearer  ${TOKEN}`)).status).toBe(200);
    expect(await reloads(admin, 'success')).toBe(before + 2);
  });

  it('guards /config, /upstreams and /certs too, and never shows the token', async () => {
    for (const path of ['/config', '/upstreams', '/certs']) {
      expect((await ask('GET', path)).status, path).toBe(401);
      expect((await ask('GET', path, `Bearer ${TOKEN}`)).status, path).toBe(200);
    }
    const shown = await ask('GET', '/config', `Bearer ${TOKEN}`);
    expect(JSON.parse(shown.text).config.admin.token).toBe('[redacted]');
    expect(shown.text).not.toContain(TOKEN);
  });

  it('leaves probes and metrics open', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics']) expect((await ask('GET', path)).status, path).toBe(200);
  });
});
