/**
 * 100 MiB each way through the egress port, in absolute-form and through a
 * CONNECT tunnel (TLS end to end), with the sidecar's memory bounded: bodies
 * stream with backpressure, they are never buffered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ProxyAgent, request } from 'undici';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { ALLOWED_GROWTH, MiB, lazyBody, peakRss, spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';
import { makeTestPki, startHttpsServer, type TestHttpsServer, type TestPki } from './helpers/tls.ts';

const TOTAL = 100 * MiB;

/** GET /download/N sends N bytes; anything else counts the body it receives and answers the count. */
function handler(req: IncomingMessage, res: ServerResponse): void {
  const download = /^\/download\/(\d+)$/.exec(req.url ?? '');
  if (download) {
    res.writeHead(200, { 'content-length': download[1] });
    lazyBody(Number(download[1])).pipe(res);
    return;
  }
  let received = 0;
  req.on('data', (chunk: Buffer) => (received += chunk.length));
  req.on('end', () => res.end(String(received)));
}

async function drain(body: AsyncIterable<unknown>): Promise<number> {
  let total = 0;
  for await (const chunk of body) total += (chunk as Buffer).length;
  return total;
}

describe('egress bodies stream with bounded memory (sidecar in its own process)', () => {
  let pki: TestPki;
  let plain: TestServer;
  let secure: TestHttpsServer;
  let sidecar: SidecarProcess;
  let absolute: ProxyAgent;
  let tunnel: ProxyAgent;

  beforeAll(async () => {
    pki = makeTestPki();
    plain = await startHttpServer(handler);
    secure = await startHttpsServer(pki, handler);
    const file = writeConfig(`
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: false }
egress:
  listen: 127.0.0.1:0
  routes:
    - { match: { host: 127.0.0.1, ports: [${plain.port}] } }
    - { match: { host: localhost, ports: [${secure.port}] } }
`);
    sidecar = await spawnSidecar(['--config', file]);
    const proxy = `http://127.0.0.1:${sidecar.egressPort}`;
    // undici's ProxyAgent: http:// in absolute-form, https:// through CONNECT.
    absolute = new ProxyAgent({ uri: proxy });
    tunnel = new ProxyAgent({ uri: proxy, requestTls: { ca: pki.ca } });
  });
  afterAll(async () => {
    await absolute?.close();
    await tunnel?.close();
    await sidecar?.stop();
    await plain.close();
    await secure.close();
    pki.remove();
  });

  async function roundTrip(origin: string, dispatcher: ProxyAgent, total: number): Promise<void> {
    const upload = await request(`${origin}/upload`, { method: 'POST', body: lazyBody(total), dispatcher });
    expect(await upload.body.text()).toBe(String(total));
    const download = await request(`${origin}/download/${total}`, { dispatcher });
    expect(download.statusCode).toBe(200);
    expect(await drain(download.body)).toBe(total);
  }

  it('absolute-form: 100 MiB up and 100 MiB down', async () => {
    const origin = `http://127.0.0.1:${plain.port}`;
    await roundTrip(origin, absolute, 32 * MiB); // warm-up: pools, parsers, JIT, the heap's working size
    const baseline = peakRss(sidecar.child.pid!);
    await roundTrip(origin, absolute, TOTAL);
    expect(peakRss(sidecar.child.pid!) - baseline).toBeLessThan(ALLOWED_GROWTH);
  });

  it('CONNECT tunnel (TLS inside): 100 MiB up and 100 MiB down', async () => {
    const origin = `https://localhost:${secure.port}`;
    await roundTrip(origin, tunnel, 32 * MiB);
    const baseline = peakRss(sidecar.child.pid!);
    await roundTrip(origin, tunnel, TOTAL);
    expect(peakRss(sidecar.child.pid!) - baseline).toBeLessThan(ALLOWED_GROWTH);
  });
});
