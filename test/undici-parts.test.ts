/**
 * src/upstream/undici.ts takes Pool, Agent and the connector from undici's
 * own files rather than its index (13 MB less RSS): they must be the very
 * classes the index exports, with the request API on their prototype, so
 * that an undici upgrade that moves a file fails here rather than in production.
 */
import * as index from 'undici';
import { expect, it } from 'vitest';
import { undici } from '../src/upstream/undici.ts';
import { startHttpServer } from './helpers/servers.ts';

it('the parts are the index\'s own classes', () => {
  expect(undici.Pool).toBe(index.Pool);
  expect(undici.Agent).toBe(index.Agent);
  expect(undici.buildConnector).toBe(index.buildConnector);
});

it('an Agent made from the parts sends a request with the request API', async () => {
  const server = await startHttpServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk));
    req.on('end', () => res.end(`${req.method} ${req.url} ${body}`));
  });
  const agent = new undici.Agent();
  try {
    const response = await agent.request({ origin: `http://127.0.0.1:${server.port}`, path: '/v1/traces?x=1', method: 'POST', body: 'spans' });
    expect(response.statusCode).toBe(200);
    expect(await response.body.text()).toBe('POST /v1/traces?x=1 spans');
  } finally {
    await agent.close();
    await server.close();
  }
});
