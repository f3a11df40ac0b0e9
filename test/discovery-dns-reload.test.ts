/**
 * DNS discovery across reloads: the discovered endpoints live in the
 * registry, so a reload that keeps `discovery.dns` keeps them (even while
 * DNS fails); a reload that changes the name routes to what the new name
 * resolves to, and until then to what the old one found.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { discoveryRig } from './helpers/dns.ts';
import { metric, waitFor } from './helpers/reload.ts';

const [A, B] = ['127.0.0.2', '127.0.0.3'];

describe('DNS discovery across reloads', () => {
  const start = discoveryRig();

  it('keeps the set through a reload that keeps the settings, and follows a new name', { timeout: 60_000 }, async () => {
    const { dns, running, url, urls } = await start([A, B], [A]);
    const reload = async (yaml: string) => {
      writeFileSync(running.file, yaml);
      const response = await request(running.admin('/reload'), { method: 'POST' });
      await response.body.text();
      expect(response.statusCode).toBe(200);
    };
    const body = async () => (await (await request(running.url('/'))).body.text());
    await waitFor('A', async () => ((await urls()).join() === url(A) ? true : undefined));

    dns.mode = 'servfail';
    const errors = () => metric(running.admin(''), 'sidecar_discovery_errors_total', '{upstream="pay"}');
    const before = await errors();
    await waitFor('a failed resolution', async () => ((await errors()) > before ? true : undefined));
    const yaml = readFileSync(running.file, 'utf8');
    await reload(`${yaml}# reloaded\n`);
    expect(await urls()).toEqual([url(A)]);
    expect(await body()).toBe(`hello from ${A}`);

    dns.mode = 'answer';
    dns.set('pay2.test', [B]);
    await reload(yaml.replace('name: pay.test.', 'name: pay2.test.'));
    await waitFor('B', async () => ((await urls()).join() === url(B) ? true : undefined));
    expect(await body()).toBe(`hello from ${B}`);
  });
});
