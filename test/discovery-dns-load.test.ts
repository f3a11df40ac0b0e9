/**
 * Upstream discovery through DNS (SPEC "Upstream discovery"): under load,
 * the endpoints follow the A records as a test DNS server changes them.
 * Addresses that appear get traffic; an address that vanishes is drained
 * (what is in flight finishes) and, once drained, gets no request at all;
 * every request of the run succeeds.
 */
import { Pool } from 'undici';
import { describe, expect, it } from 'vitest';
import { discoveryRig } from './helpers/dns.ts';
import { waitFor } from './helpers/reload.ts';

const [A, B, C] = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];

describe('DNS discovery under load', () => {
  const start = discoveryRig();

  it('adds the addresses that appear and drains, then never uses, the ones that vanish; no request fails', { timeout: 60_000 }, async () => {
    const { dns, fleet, running, url, urls } = await start([A, B, C], [A]);
    await waitFor('the first record', async () => ((await urls()).join() === url(A) ? true : undefined));

    // Load: 8 clients, each sending requests one after the other until told to stop (at most 20,000 in all).
    const pool = new Pool(running.url(), { connections: 8 });
    const statuses = new Map<number, number>();
    let sent = 0;
    let stop = false;
    const clients = Array.from({ length: 8 }, async () => {
      while (!stop && sent < 20_000) {
        sent++;
        const res = await pool.request({ path: '/', method: 'GET' });
        await res.body.text();
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      }
    });
    const servedBy = (address: string, more: number) => {
      const from = fleet.served(address);
      return waitFor(`${more} requests at ${address}`, () => (fleet.served(address) >= from + more ? true : undefined), 10_000);
    };
    try {
      await servedBy(A, 50);

      dns.set('pay.test', [A, B]);
      await waitFor('the second record', async () => ((await urls()).join() === [url(A), url(B)].join() ? true : undefined));
      await servedBy(B, 50);

      dns.set('pay.test', [B, C]);
      await waitFor('the set without A', async () => ((await urls()).join() === [url(B), url(C)].join() ? true : undefined));
      // Drained: A's pool closes its connections once what was in flight on them has finished.
      await waitFor('A drained', () => (fleet.open(A) === 0 ? true : undefined), 10_000);
      const servedByA = fleet.served(A);
      await servedBy(C, 100);
      await servedBy(B, 100);
      expect(fleet.served(A)).toBe(servedByA);
    } finally {
      stop = true;
      await Promise.all(clients);
      await pool.close();
    }
    expect([...statuses.keys()]).toEqual([200]);
    expect(statuses.get(200)).toBe(sent);
  });
});
