/**
 * A route's `idleTimeout`: the longest pause inside a response body. An
 * upstream that goes quiet mid-body has the response cut; one that keeps
 * sending, however slowly, does not; and a client that stops reading (so the
 * sidecar pauses the upstream) is not the upstream's pause.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

const BIG = 32 * 1024 * 1024;

describe('body idle timeout (route idleTimeout)', () => {
  let upstream: TestServer;
  let sidecar: RunningSidecar;
  /** Upstream responses that closed before they were complete, by path. */
  const cut: string[] = [];

  beforeAll(async () => {
    upstream = await startHttpServer((req, res) => {
      const path = req.url!;
      res.on('close', () => {
        if (!res.writableFinished) cut.push(path);
      });
      if (path.endsWith('/quiet')) {
        // A head and a first chunk, then nothing.
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first');
        return;
      }
      if (path.endsWith('/trickle')) {
        // Six chunks 100 ms apart: every pause is shorter than the route's 300 ms.
        res.writeHead(200, { 'content-type': 'text/plain' });
        let sent = 0;
        const timer = setInterval(() => {
          sent++;
          if (sent < 6) res.write(`${sent}`);
          else {
            clearInterval(timer);
            res.end('6');
          }
        }, 100);
        res.on('close', () => clearInterval(timer));
        return;
      }
      // /big: 32 MiB as fast as the sidecar takes them.
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG });
      res.end(Buffer.alloc(BIG, 'b'));
    });
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  app: { endpoints: [${upstream.url}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { match: { path: /short/ }, upstream: app, idleTimeout: 300ms }
    - { match: { path: /long/ }, upstream: app, idleTimeout: 30s }
`);
  });
  afterAll(async () => {
    await sidecar.close();
    await upstream.close();
  });

  /** Starts a GET and resolves with its response once the head is in. */
  async function open(path: string): Promise<IncomingMessage> {
    const req = httpRequest(sidecar.url(path));
    req.on('error', () => undefined);
    req.end();
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    res.on('error', () => undefined);
    return res;
  }

  it('cuts a response whose upstream goes quiet mid-body, and closes the upstream request', async () => {
    const short = await open('/short/quiet');
    const long = await open('/long/quiet');
    let shortBody = '';
    short.on('data', (chunk: Buffer) => (shortBody += chunk.toString()));
    await new Promise((resolve) => short.once('close', resolve)); // (once() would reject on the 'aborted' error)
    expect(short.statusCode).toBe(200);
    expect(shortBody).toBe('first');
    expect(short.complete).toBe(false);
    // The same silence on a route allowing 30 s: still open when the 300 ms one was cut.
    expect(long.destroyed).toBe(false);
    long.destroy();
    for (let i = 0; i < 100 && cut.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(cut.sort()).toEqual(['/long/quiet', '/short/quiet']);
  });

  it('keeps a slow body whose pauses are each shorter than idleTimeout', async () => {
    const res = await open('/short/trickle');
    let body = '';
    res.on('data', (chunk: Buffer) => (body += chunk.toString()));
    await once(res, 'end');
    expect(body).toBe('123456');
    expect(res.complete).toBe(true);
  });

  it('does not count a client that stops reading as the upstream going quiet', async () => {
    const res = await open('/short/big');
    res.pause();
    // Longer than idleTimeout: the sidecar's buffers fill and it stops reading the upstream.
    await new Promise((resolve) => setTimeout(resolve, 900));
    let received = 0;
    res.on('data', (chunk: Buffer) => (received += chunk.length));
    res.resume();
    await once(res, 'end');
    expect(received).toBe(BIG);
    expect(res.complete).toBe(true);
  });
});
