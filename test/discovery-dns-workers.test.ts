/**
 * DNS discovery with `workers: 2`: the primary resolves, once for the whole
 * sidecar (one resolver, one view of the records), and every worker routes
 * to the set it found.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshRequest } from './helpers/cluster.ts';
import { startDnsServer, startLoopbackFleet, type LoopbackFleet, type TestDnsServer } from './helpers/dns.ts';
import { upstreamsView } from './helpers/misbehave.ts';
import { spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';
import { waitFor } from './helpers/reload.ts';
import { closedPort } from './helpers/servers.ts';

const [A, B] = ['127.0.0.2', '127.0.0.3'];

describe('workers: DNS discovery', () => {
  let dns: TestDnsServer;
  let fleet: LoopbackFleet;
  let sidecar: SidecarProcess;
  let ingressPort: number;
  let adminPort: number;

  beforeAll(async () => {
    dns = await startDnsServer();
    fleet = await startLoopbackFleet([A, B]);
    dns.set('pay.test', [A]);
    ingressPort = await closedPort();
    adminPort = await closedPort();
    const file = writeConfig(`
admin: { listen: 127.0.0.1:${adminPort} }
log: { level: info, access: false }
workers: 2
upstreams:
  pay:
    discovery: { dns: { name: pay.test, port: ${fleet.port}, every: 100ms, servers: ["${dns.address}"] } }
ingress:
  listen: 127.0.0.1:${ingressPort}
  routes: [ { match: { path: / }, upstream: pay } ]
`);
    sidecar = await spawnSidecar(['--config', file]);
  });
  afterAll(async () => {
    await sidecar?.stop();
    await fleet?.close();
    await dns?.close();
  });

  const urls = async () => (await upstreamsView(`http://127.0.0.1:${adminPort}/upstreams`)).pay.endpoints.map((endpoint) => endpoint.url).sort();
  const url = (address: string) => `http://${address}:${fleet.port}`;

  it('resolves in the primary only, and every worker routes to what it found', { timeout: 60_000 }, async () => {
    await waitFor('the first record', async () => ((await urls()).join() === url(A) ? true : undefined), 10_000);
    for (let i = 0; i < 20; i++) expect((await freshRequest(ingressPort)).status).toBe(200);
    expect(fleet.served(A)).toBe(20);

    dns.set('pay.test', [A, B]);
    await waitFor('both records', async () => ((await urls()).join() === [url(A), url(B)].join() ? true : undefined), 10_000);
    // New connections land on either worker (SO_REUSEPORT); each one must know B.
    for (let i = 0; i < 40; i++) expect((await freshRequest(ingressPort)).status).toBe(200);
    expect(fleet.served(B)).toBeGreaterThan(0);
    expect(fleet.served(A) + fleet.served(B)).toBe(60);

    dns.set('pay.test', [B]);
    await waitFor('A gone', async () => ((await urls()).join() === url(B) ? true : undefined), 10_000);
    const servedByA = fleet.served(A);
    for (let i = 0; i < 20; i++) expect((await freshRequest(ingressPort)).status).toBe(200);
    expect(fleet.served(A)).toBe(servedByA);

    const discovered = sidecar.lines.filter((line) => line.msg === 'discovered endpoints');
    expect(discovered.length).toBe(3);
    expect(new Set(discovered.map((line) => line.pid))).toEqual(new Set([sidecar.child.pid]));
  });
});
