/**
 * The bucket refills at the configured rate (issue 19). Requests go one after
 * the other for a bounded window; what got through is compared with what
 * the window earned (burst + rate x the measured time), so the test asserts
 * counts, never durations.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';

const PER_SECOND = 10;
/**
 * Room for 2 s of tokens: a client held up by a busy machine (the whole suite
 * on two cores stalled it past the 0.5 s an earlier burst of 10 at 20/s
 * allowed) loses none of what the window earns.
 */
const BURST = 20;
const WINDOW_MS = 2_500;

describe('rateLimit: refill', () => {
  let upstream: TestServer;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    upstream = await startHttpServer((_req, res) => res.end('ok'));
    sidecar = await startSidecar(`${TEST_BASE}
upstreams: { app: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: app, match: { path: / }, upstream: app, rateLimit: { requests: ${PER_SECOND * 2}, per: 2s, burst: ${BURST} } }
`);
  });
  afterAll(async () => {
    await sidecar?.close();
    await upstream?.close();
  });

  it('lets through the burst plus what the elapsed time earned, and no more', async () => {
    let allowed = 0;
    let refused = 0;
    const started = performance.now();
    let last = started;
    // A short pause between requests keeps the load light; a token (one per 100 ms) still waits at most a pause and a round trip.
    for (let i = 0; i < 1_000 && performance.now() - started < WINDOW_MS; i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 5));
      const response = await request(sidecar.url('/'));
      await response.body.dump();
      if (response.statusCode === 200) allowed++;
      else if (response.statusCode === 429) refused++;
      else throw new Error(`unexpected status ${response.statusCode}`);
      last = performance.now();
    }
    const earned = (PER_SECOND * (last - started)) / 1000;
    expect(refused).toBeGreaterThan(0);
    // Every token earned was taken within about one round trip of its arrival (two spare for a slow machine).
    const seen = `${allowed} allowed, ${refused} refused, ${earned.toFixed(1)} tokens earned`;
    expect(allowed, seen).toBeGreaterThanOrEqual(BURST + Math.floor(earned) - 2);
    expect(allowed, seen).toBeLessThanOrEqual(BURST + Math.ceil(earned));
  });
});
