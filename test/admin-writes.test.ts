/**
 * POST /reload from a browser that should not be able to make it: a page of
 * another origin (CSRF: `Origin`, `Sec-Fetch-Site`) or a name that an
 * attacker rebound to 127.0.0.1 (DNS rebinding: `Host`) is refused with 403
 * and a JSON body, and nothing is reloaded; the admin's own addresses and
 * origin still reload.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { reloads } from './helpers/reload.ts';

describe('admin writes: same origin, own Host', () => {
  let sidecar: RunningSidecar;
  let port: number;
  let admin: string;

  beforeAll(async () => {
    sidecar = await startSidecar(TEST_BASE);
    port = sidecar.sidecar.adminPort!;
    admin = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await sidecar.close();
  });

  /** POST /reload over node:http, which sends exactly the Host and Origin given. */
  function postReload(headers: OutgoingHttpHeaders): Promise<{ status: number; type: string | undefined; body: { error?: string; message?: string; hash?: string } }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/reload', headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], body: JSON.parse(text) }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('refuses a Host that is not the admin address (DNS rebinding), and reloads nothing', async () => {
    const before = await reloads(admin, 'success');
    for (const host of [`evil.example:${port}`, `127.0.0.1.nip.io:${port}`, `attacker.localhost.example:${port}`, 'evil.example']) {
      const answer = await postReload({ host });
      expect(answer.status, host).toBe(403);
      expect(answer.type).toBe('application/json');
      expect(answer.body.error).toBe('forbidden');
      expect(answer.body.message).toContain('Host');
    }
    expect(await reloads(admin, 'success')).toBe(before);
  });

  it('refuses a foreign Origin or Sec-Fetch-Site (CSRF), and reloads nothing', async () => {
    const before = await reloads(admin, 'success');
    const foreign: OutgoingHttpHeaders[] = [
      { origin: 'http://evil.example' },
      { origin: 'null' },
      { origin: `https://127.0.0.1:${port}` },
      { origin: `http://localhost:${port}` }, // another origin than the Host the request names
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'cross-site' },
    ];
    for (const headers of foreign) {
      const answer = await postReload(headers);
      expect(answer.status, JSON.stringify(headers)).toBe(403);
      expect(answer.body.error).toBe('forbidden');
    }
    expect(await reloads(admin, 'success')).toBe(before);
  });

  it('reloads for the admin address by any of its names, and from its own origin', async () => {
    const before = await reloads(admin, 'success');
    const own: OutgoingHttpHeaders[] = [
      {},
      { host: `localhost:${port}` },
      { host: `LocalHost.:${port}` },
      { host: `[::1]:${port}` },
      { origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin' },
      { host: `localhost:${port}`, origin: `http://localhost:${port}` },
      { 'sec-fetch-site': 'none' }, // typed by the user, not sent by a page
    ];
    for (const headers of own) {
      const answer = await postReload(headers);
      expect(answer.status, JSON.stringify(headers)).toBe(200);
      expect(answer.body.hash).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(await reloads(admin, 'success')).toBe(before + own.length);
  });
});
