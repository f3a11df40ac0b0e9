/**
 * With `workers: N` each worker process enforces 1/N of a rate limit (issue
 * 19; shared buckets in the primary are a later step). A keep-alive
 * connection stays with one worker, so one connection sees that worker's
 * share exactly: burst 4 over 2 workers lets 2 through.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pool } from 'undici';
import { closedPort, startHttpServer, type TestServer } from './helpers/servers.ts';
import { spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';

describe('rateLimit with workers', () => {
  let upstream: TestServer;
  let sidecar: SidecarProcess;
  let ingressPort: number;

  beforeAll(async () => {
    upstream = await startHttpServer((_req, res) => res.end('ok'));
    ingressPort = await closedPort();
    const file = writeConfig(`
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: false }
workers: 2
upstreams: { app: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:${ingressPort}
  routes:
    - { name: app, match: { path: / }, upstream: app, rateLimit: { requests: 4, per: 1m, burst: 4 } }
`);
    sidecar = await spawnSidecar(['--config', file]);
  });
  afterAll(async () => {
    await sidecar?.stop();
    await upstream?.close();
  });

  it('lets one connection (one worker) have its worker share of the burst', async () => {
    const pool = new Pool(`http://127.0.0.1:${ingressPort}`, { connections: 1, pipelining: 1 });
    try {
      const answers = [];
      for (let i = 0; i < 3; i++) {
        const response = await pool.request({ path: '/', method: 'GET' });
        await response.body.dump();
        answers.push({ status: response.statusCode, policy: response.headers['ratelimit-policy'] });
      }
      expect(answers.map((answer) => answer.status)).toEqual([200, 200, 429]);
      // The fields describe what this worker enforces: 2 per minute.
      expect(answers[2].policy).toBe('"app";q=2;w=60');
    } finally {
      await pool.close();
    }
  });
});
