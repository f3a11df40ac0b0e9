/**
 * A 100 MiB compressible answer is compressed as it streams (issue 19): the
 * upstream sends faster than gzip compresses, so only backpressure through
 * the encoder keeps the sidecar from buffering it. Its peak RSS (the sidecar
 * runs in its own process, as in ingress-memory.test.ts) grows by less than
 * ALLOWED_GROWTH, and the client's decoded bytes are exactly the upstream's.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { ALLOWED_GROWTH, MiB, peakRss, spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';
import { textBody } from './helpers/encoded.ts';

/** 1 MiB of JSON lines: sent 100 times, it is 100 MiB that gzip's 32 KiB window cannot shortcut. */
const BLOCK = textBody(MiB);

function blocks(count: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      this.push(sent++ < count ? BLOCK : null);
    },
  });
}

describe('compression streams with bounded memory (sidecar in its own process)', () => {
  let upstream: TestServer;
  let sidecar: SidecarProcess;

  beforeAll(async () => {
    upstream = await startHttpServer((req, res) => {
      const count = req.url === '/warm' ? 32 : 100;
      res.writeHead(200, { 'content-type': 'application/x-ndjson', 'content-length': count * BLOCK.length });
      blocks(count).pipe(res);
    });
    const file = writeConfig(`
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: false }
upstreams:
  up: { endpoints: [${upstream.url}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: / }, upstream: up, compress: { algorithms: [gzip] } }
`);
    sidecar = await spawnSidecar(['--config', file]);
  });
  afterAll(async () => {
    await sidecar?.stop();
    await upstream?.close();
  });

  /** GETs `path` with gzip; resolves with the decoded length, its SHA-256 and the bytes on the wire. */
  async function download(path: string): Promise<{ length: number; digest: string; wire: number }> {
    const response = await request(`http://127.0.0.1:${sidecar.ingressPort}${path}`, { headers: { 'accept-encoding': 'gzip' } });
    expect(response.headers['content-encoding']).toBe('gzip');
    const gunzip = createGunzip();
    const hash = createHash('sha256');
    let length = 0;
    let wire = 0;
    response.body.on('data', (chunk: Buffer) => (wire += chunk.length));
    response.body.pipe(gunzip);
    for await (const chunk of gunzip) {
      length += (chunk as Buffer).length;
      hash.update(chunk as Buffer);
    }
    return { length, digest: hash.digest('hex'), wire };
  }

  it('compresses 100 MiB without growing memory, and decodes to the upstream bytes', async () => {
    await download('/warm'); // the baseline includes pools, the encoder's buffers, JIT and the heap's working size
    const baseline = peakRss(sidecar.child.pid!);

    const result = await download('/big');
    const expected = createHash('sha256');
    for (let i = 0; i < 100; i++) expected.update(BLOCK);
    expect(result.length).toBe(100 * MiB);
    expect(result.digest).toBe(expected.digest('hex'));
    expect(result.wire).toBeLessThan(result.length / 3);

    const growth = peakRss(sidecar.child.pid!) - baseline;
    expect(growth).toBeLessThan(ALLOWED_GROWTH);
  });
});
