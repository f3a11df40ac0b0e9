import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { eventually, scriptedServer, type ScriptedServer } from './helpers/misbehave.ts';
import { spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';

/** The access log says how many tries a request took and why retries stopped (sidecar in its own process). */
describe('access log: attempts and retryStop', () => {
  let resetter: ScriptedServer;
  let flaky: ScriptedServer;
  let dead: ScriptedServer;
  let sidecar: SidecarProcess;

  beforeAll(async () => {
    resetter = await scriptedServer('resetter', ['reset']); // reads the whole body, then resets
    flaky = await scriptedServer('flaky', [{ status: 503 }, { status: 503 }, 'ok']);
    dead = await scriptedServer('dead', ['reset']);
    sidecar = await spawnSidecar([
      '--config',
      writeConfig(`
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: true }
upstreams:
  resetter: { endpoints: [${resetter.url}] }
  flaky: { endpoints: [${flaky.url}] }
  dead: { endpoints: [${dead.url}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - match: { path: /upload }
      upstream: resetter
      retry: { attempts: 3, on: [reset], methods: [POST], bufferBody: 1KiB, backoff: { base: 1ms, max: 2ms } }
    - { match: { path: /flaky }, upstream: flaky, retry: { attempts: 3, backoff: { base: 1ms, max: 2ms } } }
    - { match: { path: /dead }, upstream: dead, retry: { attempts: 3, on: [reset], backoff: { base: 1ms, max: 2ms } } }
`),
    ]);
  });
  afterAll(async () => {
    await sidecar.stop();
    await Promise.all([resetter.close(), flaky.close(), dead.close()]);
  });

  async function accessLine(reqId: string): Promise<Record<string, unknown>> {
    let line: Record<string, unknown> | undefined;
    await eventually(() => (line = sidecar.lines.find((l) => l.log === 'access' && l.reqId === reqId)) !== undefined, 100, 20);
    if (!line) throw new Error(`no access line for ${reqId}`);
    return line;
  }

  it('a POST body over bufferBody streams on, is not retried, and the log says body_too_large', async () => {
    const body = 'b'.repeat(10 * 1024);
    const response = await request(`http://127.0.0.1:${sidecar.ingressPort}/upload`, { method: 'POST', body, headers: { 'x-request-id': 'big-post' } });
    expect(response.statusCode).toBe(502);
    await response.body.text();
    expect(resetter.hits()).toBe(1);
    expect(resetter.bodies).toEqual([body]); // the whole body reached the upstream, streamed past the limit
    const line = await accessLine('big-post');
    expect(line).toMatchObject({ status: 502, attempts: 1, error: 'upstream_reset', retryStop: 'body_too_large', bytesIn: body.length });
  });

  it('a request that needed three tries: attempts 3, no retryStop', async () => {
    const response = await request(`http://127.0.0.1:${sidecar.ingressPort}/flaky`, { headers: { 'x-request-id': 'flaky-get' } });
    expect(response.statusCode).toBe(200);
    await response.body.text();
    const line = await accessLine('flaky-get');
    expect(line).toMatchObject({ status: 200, attempts: 3 });
    expect(line.retryStop).toBeUndefined();
    expect(line.error).toBeUndefined();
  });

  it('every try failed: attempts 3, error and retryStop exhausted', async () => {
    const response = await request(`http://127.0.0.1:${sidecar.ingressPort}/dead`, { headers: { 'x-request-id': 'dead-get' } });
    expect(response.statusCode).toBe(502);
    await response.body.text();
    expect(await accessLine('dead-get')).toMatchObject({ status: 502, attempts: 3, error: 'upstream_reset', retryStop: 'exhausted' });
  });
});
