import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { scriptedServer, type ScriptedServer } from './helpers/misbehave.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

const REQUESTS = 200;
const CONCURRENCY = 8;

describe('load balancing', () => {
  let fast: ScriptedServer;
  let slow: ScriptedServer;
  let c: ScriptedServer;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    fast = await scriptedServer('fast', ['ok']);
    slow = await scriptedServer('slow', [{ slowHeadMs: 50 }]);
    c = await scriptedServer('c', ['ok']);
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  lr: { endpoints: [${fast.url}, ${slow.url}], balance: least-request }
  rr: { endpoints: [${fast.url}, ${slow.url}, ${c.url}], balance: round-robin }
  rnd: { endpoints: [${fast.url}, ${c.url}], balance: random }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: /lr }, upstream: lr }
    - { match: { path: /rr }, upstream: rr }
    - { match: { path: /rnd }, upstream: rnd }
`);
  });
  afterAll(async () => {
    await sidecar.close();
    await Promise.all([fast.close(), slow.close(), c.close()]);
  });

  /** Sends `total` GETs with `concurrency` in flight; returns the body counts. */
  async function load(path: string, total: number, concurrency: number): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    let next = 0;
    const worker = async () => {
      while (next < total) {
        next++;
        const response = await request(sidecar.url(path));
        const body = await response.body.text();
        counts[body] = (counts[body] ?? 0) + 1;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return counts;
  }

  it('least-request sends less traffic to a slow endpoint', async () => {
    const counts = await load('/lr', REQUESTS, CONCURRENCY);
    console.info(`least-request: fast ${counts['ok fast'] ?? 0}, slow ${counts['ok slow'] ?? 0} of ${REQUESTS}`);
    expect((counts['ok fast'] ?? 0) + (counts['ok slow'] ?? 0)).toBe(REQUESTS);
    expect(counts['ok slow'] ?? 0).toBeLessThan(REQUESTS / 4);
  });

  it('round-robin spreads sequential requests evenly', async () => {
    const counts = await load('/rr', 30, 1);
    expect(counts).toEqual({ 'ok fast': 10, 'ok slow': 10, 'ok c': 10 });
  });

  it('random uses every endpoint', async () => {
    const counts = await load('/rnd', 60, 4);
    expect(counts['ok fast']).toBeGreaterThan(5);
    expect(counts['ok c']).toBeGreaterThan(5);
  });
});
