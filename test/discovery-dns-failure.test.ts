/**
 * Upstream discovery through DNS (SPEC "Upstream discovery"): a failed
 * resolution (SERVFAIL, no answer, NXDOMAIN) keeps the last set of endpoints,
 * is counted in sidecar_discovery_errors_total{upstream} and logged; a name
 * with no address left (NODATA) empties the upstream. The metrics and
 * GET /upstreams show the live set throughout.
 */
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { discoveryRig } from './helpers/dns.ts';
import { metric, waitFor } from './helpers/reload.ts';

const [A, B] = ['127.0.0.2', '127.0.0.3'];

describe('DNS discovery when DNS fails', () => {
  const start = discoveryRig();

  it('keeps the last set, counts each failure, and shows the set in /metrics and /upstreams', { timeout: 60_000 }, async () => {
    const { dns, running, url, urls } = await start([A, B], [A, B], '  fixed: { endpoints: [http://127.0.0.1:9] }');
    const admin = running.admin('');
    const both = [url(A), url(B)];
    const endpoints = () => metric(admin, 'sidecar_upstream_endpoints', '{upstream="pay"}');
    const errors = () => metric(admin, 'sidecar_discovery_errors_total', '{upstream="pay"}');
    const get = async () => {
      const res = await request(running.url('/'));
      return { status: res.statusCode, body: await res.body.text() };
    };

    await waitFor('both records', async () => ((await urls()).join() === both.join() ? true : undefined));
    expect(await endpoints()).toBe(2);
    expect(await metric(admin, 'sidecar_upstream_endpoints', '{upstream="fixed"}')).toBe(1);
    expect(await errors()).toBe(0);

    for (const failure of ['servfail', 'drop', 'nxdomain'] as const) {
      const before = await errors();
      if (failure === 'nxdomain') {
        dns.mode = 'answer';
        dns.forget('pay.test');
      } else {
        dns.mode = failure;
      }
      await waitFor(`two failed resolutions (${failure})`, async () => ((await errors()) >= before + 2 ? true : undefined), 15_000);
      expect(await urls()).toEqual(both);
      expect(await endpoints()).toBe(2);
      const answers = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const { status, body } = await get();
        expect(status).toBe(200);
        answers.add(body);
      }
      expect([...answers].sort()).toEqual([`hello from ${A}`, `hello from ${B}`]);
    }

    // A name without addresses (NODATA) is an answer, not a failure: the upstream has no endpoint left.
    dns.mode = 'answer';
    dns.set('pay.test', []);
    const before = await errors();
    await waitFor('no endpoint', async () => ((await urls()).length === 0 ? true : undefined));
    expect(await endpoints()).toBe(0);
    const { status, body } = await get();
    expect(status).toBe(503);
    expect(JSON.parse(body).error).toBe('no_healthy_endpoint');
    expect(await errors()).toBe(before);

    dns.set('pay.test', [B]);
    await waitFor('B back', async () => ((await urls()).join() === both[1] ? true : undefined));
    expect(await endpoints()).toBe(1);
    expect((await get()).body).toBe(`hello from ${B}`);
  });
});
