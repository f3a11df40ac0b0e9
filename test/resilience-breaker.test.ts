import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { eventually, metricValue, scriptedServer, upstreamsView, type ScriptedServer } from './helpers/misbehave.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

/** Requests answered while the breaker is open, for the latency median. */
const OPEN_SAMPLES = 50;

describe('circuit breaker per upstream', () => {
  let upstream: ScriptedServer;
  let slow: ScriptedServer;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    upstream = await scriptedServer('b', [{ status: 500 }]);
    slow = await scriptedServer('slow', [{ slowHeadMs: 400 }]);
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  b:
    endpoints: [${upstream.url}]
    breaker: { errorRate: 0.5, minRequests: 5, window: 10s, openFor: 1500ms }
  slow:
    endpoints: [${slow.url}]
    breaker: { maxConcurrent: 2 }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: /slow }, upstream: slow }
    - { match: { path: / }, upstream: b }
`);
  });
  afterAll(async () => {
    await sidecar.close();
    await Promise.all([upstream.close(), slow.close()]);
  });

  const breakerOf = async (name: string) => (await upstreamsView(sidecar.admin('/upstreams')))[name].breaker;
  const circuit = (state: string) => metricValue(sidecar.admin('/metrics'), 'sidecar_circuit_state', { upstream: 'b', state });
  async function get(path = '/'): Promise<{ status: number; error: unknown; ms: number }> {
    const start = performance.now();
    const response = await request(sidecar.url(path));
    await response.body.text();
    return { status: response.statusCode, error: response.headers['x-sidecar-error'], ms: performance.now() - start };
  }

  it('opens after minRequests tries with a failed share >= errorRate, then answers 503 circuit_open at once without reaching the upstream', async () => {
    expect(await breakerOf('b')).toBe('closed');
    expect(await circuit('closed')).toBe(1);
    for (let i = 0; i < 4; i++) expect((await get()).status).toBe(500); // 5xx answers are passed on and counted
    expect(await breakerOf('b')).toBe('closed'); // below minRequests
    expect((await get()).status).toBe(500);
    expect(await breakerOf('b')).toBe('open');
    expect(await circuit('open')).toBe(1);
    expect(await circuit('closed')).toBe(0);

    const hits = upstream.hits();
    const samples: number[] = [];
    for (let i = 0; i < OPEN_SAMPLES; i++) {
      const answer = await get();
      expect(answer).toMatchObject({ status: 503, error: 'circuit_open' });
      samples.push(answer.ms);
    }
    expect(upstream.hits()).toBe(hits);
    samples.sort((a, b) => a - b);
    const median = samples[Math.floor(samples.length / 2)];
    console.info(`breaker open: median answer ${median.toFixed(2)} ms over ${OPEN_SAMPLES} requests (max ${samples.at(-1)!.toFixed(2)} ms)`);
    expect(median).toBeLessThan(5);
  });

  it('half-opens after openFor; a failing trial opens it again', async () => {
    expect(await eventually(async () => (await breakerOf('b')) === 'half_open', 100, 50)).toBe(true);
    expect(await circuit('half_open')).toBe(1);
    expect((await get()).status).toBe(500); // the trial reaches the upstream, fails
    expect(await breakerOf('b')).toBe('open');
  });

  it('half-opens again and closes on a successful trial', async () => {
    upstream.setScript(['ok']);
    expect(await eventually(async () => (await breakerOf('b')) === 'half_open', 100, 50)).toBe(true);
    const trial = await get();
    expect(trial.status).toBe(200);
    expect(await breakerOf('b')).toBe('closed');
    expect(await circuit('closed')).toBe(1);
    // Closed with fresh counts: one failure now does not re-open it.
    upstream.setScript([{ status: 500 }, 'ok']);
    expect((await get()).status).toBe(500);
    expect(await breakerOf('b')).toBe('closed');
  });

  it('maxConcurrent: beyond it, 503 overloaded at once', async () => {
    const first = get('/slow');
    const second = get('/slow');
    expect(await eventually(() => slow.hits() === 2, 100, 20)).toBe(true);
    const third = await get('/slow');
    expect(third).toMatchObject({ status: 503, error: 'overloaded' });
    expect(slow.hits()).toBe(2);
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
    expect((await get('/slow')).status).toBe(200); // room again
  });
});
