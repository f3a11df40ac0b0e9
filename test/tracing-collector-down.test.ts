/**
 * A collector that is down (nothing listens) or slow (accepts, never answers)
 * adds no latency to requests: in the same bounded window, about as many
 * requests complete with every request sampled as with none sampled (counted,
 * not timed). The spans that cannot go are dropped and counted in
 * sidecar_tracing_spans_dropped_total: export_failed when the collector
 * refuses, queue_full while an export hangs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { closedPort, echoServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { appBehindIngress, startOtlpReceiver, type OtlpReceiver } from './helpers/otlp-receiver.ts';

const WINDOW_MS = 1_500;
const SAMPLED = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const UNSAMPLED = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00';

async function dropped(sidecar: RunningSidecar, reason: string): Promise<number> {
  const text = await (await request(sidecar.admin('/metrics'))).body.text();
  return Number(new RegExp(`^sidecar_tracing_spans_dropped_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
}

/** Requests completed one after the other on 4 keep-alive connections during WINDOW_MS, all with `traceparent`. */
async function completedInWindow(sidecar: RunningSidecar, traceparent: string): Promise<number> {
  const agent = new Agent({ connections: 4 });
  let done = 0;
  const until = Date.now() + WINDOW_MS;
  const worker = async () => {
    for (let i = 0; i < 100_000 && Date.now() < until; i++) {
      const response = await request(sidecar.url('/'), { dispatcher: agent, headers: { traceparent } });
      await response.body.dump();
      if (response.statusCode === 200) done++;
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  await agent.close();
  return done;
}

for (const collector of ['down', 'slow'] as const) {
  describe(`tracing: a collector that is ${collector}`, () => {
    let echo: TestServer;
    let receiver: OtlpReceiver | undefined;
    let sidecar: RunningSidecar;

    beforeAll(async () => {
      echo = await echoServer();
      receiver = collector === 'slow' ? await startOtlpReceiver('slow') : undefined;
      const endpoint = receiver?.url ?? `http://127.0.0.1:${await closedPort()}/v1/traces`;
      sidecar = await startSidecar(`${TEST_BASE}
tracing: { endpoint: "${endpoint}", sampleRatio: 1, maxQueue: 64, maxBatch: 16, flushInterval: 10ms, exportTimeout: 30s }${appBehindIngress(echo.url)}`);
    });
    afterAll(async () => {
      await sidecar?.close();
      await receiver?.close();
      await echo?.close();
    });

    it('completes as many requests in a window as without sampling, and counts the dropped spans', async () => {
      await completedInWindow(sidecar, UNSAMPLED); // warm-up
      const unsampled = await completedInWindow(sidecar, UNSAMPLED);
      // The counters are the process's (both collectors' tests run in it): what this window added.
      const before = { queueFull: await dropped(sidecar, 'queue_full'), exportFailed: await dropped(sidecar, 'export_failed') };
      const sampled = await completedInWindow(sidecar, SAMPLED);
      expect(unsampled).toBeGreaterThan(100);
      expect(sampled).toBeGreaterThan(unsampled * 0.6);
      const queueFull = (await dropped(sidecar, 'queue_full')) - before.queueFull;
      const exportFailed = (await dropped(sidecar, 'export_failed')) - before.exportFailed;
      if (collector === 'slow') {
        // One batch hangs in its export; the queue holds 64 spans; every other span was dropped.
        expect(receiver!.requests()).toBe(1);
        expect(queueFull).toBeGreaterThanOrEqual(sampled - 64 - 16);
        expect(exportFailed).toBe(0);
      } else {
        expect(exportFailed).toBeGreaterThan(0);
        expect(queueFull + exportFailed).toBeGreaterThanOrEqual(sampled - 64);
      }
    });
  });
}
