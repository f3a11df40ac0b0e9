/**
 * HTTP/2 bodies stream with bounded memory (issue 18), the sidecar in its own
 * process: eight 10 MiB downloads and eight 10 MiB uploads at once on one h2
 * connection, to an HTTP/1.1 upstream and to an h2c one, with the slow side
 * holding back for a while (the client does not read; the upstream does not
 * read). Flow control must hold the senders back: buffering the bodies would
 * add 80 MiB per direction and upstream kind (320 MiB in all); the bound is
 * twice ALLOWED_GROWTH (96 MiB), since the heap and nghttp2's buffers grow to
 * their working size during the run (a second run grows by 10 MiB more).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer as createH2cServer, type ClientHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { h2Session } from './helpers/h2.ts';
import { ALLOWED_GROWTH, MiB, lazyBody, peakRss, spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';

const BODY = 10 * MiB;
const STREAMS = 8;
/** How long the slow side holds back before it reads. */
const HOLD_MS = 1_500;
const BOUND = 2 * ALLOWED_GROWTH;

/** A download read after HOLD_MS; resolves with its byte count (bounded: 60 s). */
function download(session: ClientHttp2Session, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path }, { endStream: true });
    let bytes = 0;
    const timer = setTimeout(() => stream.destroy(new Error(`${path}: not done in 60 s`)), 60_000);
    stream.pause();
    setTimeout(() => stream.resume(), HOLD_MS);
    stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
    stream.on('end', () => {
      clearTimeout(timer);
      resolve(bytes);
    });
    stream.on('error', reject);
  });
}

/** An upload; resolves with what the upstream says it received (bounded: 60 s). */
function upload(session: ClientHttp2Session, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, ':method': 'POST' });
    let answer = '';
    const timer = setTimeout(() => stream.destroy(new Error(`${path}: not done in 60 s`)), 60_000);
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (answer += chunk));
    stream.on('end', () => {
      clearTimeout(timer);
      resolve(answer);
    });
    stream.on('error', reject);
    lazyBody(BODY).pipe(stream);
  });
}

/** STREAMS downloads and STREAMS uploads at once, to the HTTP/1.1 upstream and then to the h2c one. */
async function round(session: ClientHttp2Session): Promise<void> {
  for (const prefix of ['/', '/h2c/']) {
    const downloads = Array.from({ length: STREAMS }, (_, i) => download(session, `${prefix}down/${i}`));
    const uploads = Array.from({ length: STREAMS }, (_, i) => upload(session, `${prefix}up/${i}`));
    expect(await Promise.all(downloads)).toEqual(Array.from({ length: STREAMS }, () => BODY));
    expect(await Promise.all(uploads)).toEqual(Array.from({ length: STREAMS }, () => String(BODY)));
  }
}

describe('HTTP/2 bodies with bounded memory (sidecar in its own process)', () => {
  let h1: TestServer;
  let h2c: { port: number; close(): void };
  let sidecar: SidecarProcess;

  beforeAll(async () => {
    // Both upstreams: GET = a 10 MiB body; POST = count what arrives, reading only after HOLD_MS.
    h1 = await startHttpServer((req, res) => {
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-length': BODY });
        return void lazyBody(BODY).pipe(res);
      }
      let bytes = 0;
      req.pause();
      setTimeout(() => req.resume(), HOLD_MS);
      req.on('data', (chunk: Buffer) => (bytes += chunk.length));
      req.on('end', () => res.end(String(bytes)));
    });
    const server = createH2cServer();
    server.on('stream', (stream: ServerHttp2Stream, headers) => {
      stream.on('error', () => {});
      if (headers[':method'] === 'GET') {
        stream.respond({ ':status': 200 });
        return void lazyBody(BODY).pipe(stream);
      }
      let bytes = 0;
      stream.pause();
      setTimeout(() => stream.resume(), HOLD_MS);
      stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
      stream.on('end', () => {
        stream.respond({ ':status': 200 });
        stream.end(String(bytes));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    h2c = { port: (server.address() as AddressInfo).port, close: () => server.close() };
    sidecar = await spawnSidecar([
      '--config',
      writeConfig(`
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: false }
upstreams:
  h1: { endpoints: [${h1.url}] }
  h2c: { endpoints: [http://127.0.0.1:${h2c.port}], protocol: h2c }
ingress:
  listen: 127.0.0.1:0
  h2c: true
  routes:
    - { match: { path: /h2c/ }, upstream: h2c }
    - { match: { path: / }, upstream: h1 }
`),
    ]);
  });
  afterAll(async () => {
    await sidecar?.stop();
    await h1?.close();
    h2c?.close();
  });

  it('8 x 10 MiB down and up at once on one connection, each side holding back: memory stays bounded', async () => {
    const session = await h2Session(`http://127.0.0.1:${sidecar.ingressPort}`);
    try {
      // Warm up: pools, parsers and JIT are in the baseline.
      expect(await download(session, '/h2c/warm')).toBe(BODY);
      expect(await upload(session, '/warm')).toBe(String(BODY));
      const baseline = peakRss(sidecar.child.pid!);
      await round(session);
      const growth = peakRss(sidecar.child.pid!) - baseline;
      // Measured: about 65 MiB, most of it the heap and nghttp2 growing to their working size.
      expect(growth).toBeLessThan(BOUND);
    } finally {
      session.close();
    }
  }, 120_000);
});
