/**
 * What a rate limit counts per (issue 19): `key: client-ip` gives every
 * client address its own bucket (clients here connect from distinct
 * loopback addresses), the address behind a trusted proxy is read from
 * X-Forwarded-For while an untrusted peer cannot choose its key with it;
 * `key: header:NAME` keys by the header's value; `key: route` shares one
 * bucket among all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get } from 'node:http';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';

describe('rateLimit: keys', () => {
  let upstream: TestServer;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    upstream = await startHttpServer((_req, res) => res.end('ok'));
    sidecar = await startSidecar(`${TEST_BASE}
upstreams: { app: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  trustedProxies: [127.0.0.4]
  routes:
    - { name: per-client, match: { path: /client/ }, upstream: app, rateLimit: { requests: 1, per: 1m, burst: 2, key: client-ip } }
    - { name: per-key, match: { path: /key/ }, upstream: app, rateLimit: { requests: 1, per: 1m, burst: 2, key: "header:X-Api-Key" } }
    - { name: shared, match: { path: /shared/ }, upstream: app, rateLimit: { requests: 1, per: 1m, burst: 2 } }
`);
  });
  afterAll(async () => {
    await sidecar?.close();
    await upstream?.close();
  });

  /** Statuses of `count` GETs of `path` from the loopback address `from` (node:http: undici's Agent ignores localAddress). */
  async function statuses(from: string, path: string, count: number, headers: Record<string, string> = {}): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = get(sidecar.url(path), { localAddress: from, headers, agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
      });
      out.push(status);
    }
    return out;
  }

  it('gives each client address its own bucket', async () => {
    expect(await statuses('127.0.0.2', '/client/a', 3)).toEqual([200, 200, 429]);
    expect(await statuses('127.0.0.3', '/client/a', 3)).toEqual([200, 200, 429]);
  });

  it('keys the requests of a trusted proxy by the client it names in X-Forwarded-For', async () => {
    expect(await statuses('127.0.0.4', '/client/b', 3, { 'x-forwarded-for': '198.51.100.1' })).toEqual([200, 200, 429]);
    expect(await statuses('127.0.0.4', '/client/b', 2, { 'x-forwarded-for': '198.51.100.2' })).toEqual([200, 200]);
    // The proxy itself is not the client: its own requests have a bucket of their own too.
    expect(await statuses('127.0.0.4', '/client/b', 1)).toEqual([200]);
  });

  it('never lets an untrusted peer pick its key with X-Forwarded-For', async () => {
    const spoofed = [];
    for (let i = 0; i < 3; i++) spoofed.push(...(await statuses('127.0.0.5', '/client/c', 1, { 'x-forwarded-for': `203.0.113.${i}` })));
    expect(spoofed).toEqual([200, 200, 429]);
  });

  it('keys by a header value; requests without the header share one bucket', async () => {
    expect(await statuses('127.0.0.6', '/key/x', 3, { 'x-api-key': 'tenant-1' })).toEqual([200, 200, 429]);
    expect(await statuses('127.0.0.6', '/key/x', 3, { 'x-api-key': 'tenant-2' })).toEqual([200, 200, 429]);
    expect(await statuses('127.0.0.6', '/key/x', 3)).toEqual([200, 200, 429]);
  });

  it('shares one bucket among all clients with key: route', async () => {
    expect([...(await statuses('127.0.0.7', '/shared/x', 2)), ...(await statuses('127.0.0.8', '/shared/x', 1))]).toEqual([200, 200, 429]);
  });
});
