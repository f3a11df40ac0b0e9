/**
 * A flood of distinct keys cannot grow a rate limit's memory (issue 19):
 * 100k requests, each with a header value never seen before, against a
 * route keyed by that header. The sidecar (its own process) holds exactly
 * `maxKeys` buckets, as `sidecar_rate_limit_keys` (the size of the key map
 * itself) shows. Its peak RSS is also held under ALLOWED_GROWTH, a coarse
 * guard against keeping anything per request: 100k unbounded buckets
 * (measured: about as much RSS as the flood's own heap churn) would not
 * exceed it alone, which is why the key count is the precise check.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pool, request } from 'undici';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { ALLOWED_GROWTH, peakRss, spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';

const MAX_KEYS = 10_000;
const FLOOD = 100_000;
/** Concurrent requests of the flood. */
const PARALLEL = 32;

describe('rateLimit: a flood of keys (sidecar in its own process)', () => {
  let upstream: TestServer;
  let sidecar: SidecarProcess;
  let pool: Pool;

  beforeAll(async () => {
    upstream = await startHttpServer((_req, res) => res.end());
    const file = writeConfig(`
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: false }
upstreams:
  up: { endpoints: [${upstream.url}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: keyed, match: { path: / }, upstream: up, rateLimit: { requests: 1000000, per: 1s, key: "header:x-client", maxKeys: ${MAX_KEYS} } }
`);
    sidecar = await spawnSidecar(['--config', file]);
    pool = new Pool(`http://127.0.0.1:${sidecar.ingressPort}`, { connections: 8 });
  });
  afterAll(async () => {
    await pool?.close();
    await sidecar?.stop();
    await upstream?.close();
  });

  /** `count` requests, each with a new x-client value from `prefix`; resolves with how many got 200. */
  async function flood(prefix: string, count: number): Promise<number> {
    let next = 0;
    let ok = 0;
    const worker = async () => {
      while (next < count) {
        const id = next++;
        const response = await pool.request({ path: '/', method: 'GET', headers: { 'x-client': `${prefix}-${id}` } });
        await response.body.dump();
        if (response.statusCode === 200) ok++;
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    return ok;
  }

  async function keysHeld(): Promise<number> {
    const text = await (await request(`http://127.0.0.1:${sidecar.adminPort}/metrics`)).body.text();
    const line = text.split('\n').find((l) => l.startsWith('sidecar_rate_limit_keys{listener="ingress",route="keyed"}'));
    return Number(line?.split(' ').pop());
  }

  it('holds at most maxKeys buckets and does not grow its memory', { timeout: 120_000 }, async () => {
    expect(await flood('warm', 2 * MAX_KEYS)).toBe(2 * MAX_KEYS);
    expect(await keysHeld()).toBe(MAX_KEYS);
    const baseline = peakRss(sidecar.child.pid!);

    expect(await flood('flood', FLOOD)).toBe(FLOOD);
    expect(await keysHeld()).toBe(MAX_KEYS);
    const growth = peakRss(sidecar.child.pid!) - baseline;
    expect(growth).toBeLessThan(ALLOWED_GROWTH);
  });
});
