/**
 * A client that leaves closes the upstream side at once: in absolute-form
 * (during the response and during the upload), for HTTP inside a CONNECT
 * tunnel, and for a blind tunnel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { startTcpServer } from './helpers/raw.ts';
import { openConnect } from './helpers/egress.ts';
import { eventually, metricValue } from './helpers/misbehave.ts';

describe('client abort closes the upstream side', () => {
  let upstream: TestServer;
  let opaque: Awaited<ReturnType<typeof startTcpServer>>;
  let sidecar: RunningSidecar;
  let proxy: number;
  /** Resolvers for "the upstream saw its side close", by request path. */
  const closedUpstream = new Map<string, () => void>();
  const upstreamClosed = (path: string) => new Promise<void>((resolve) => closedUpstream.set(path, resolve));
  let opaqueClosed: () => void = () => undefined;

  beforeAll(async () => {
    upstream = await startHttpServer((req: IncomingMessage, res: ServerResponse) => {
      res.once('close', () => closedUpstream.get(req.url!)?.());
      if (req.method === 'POST') {
        req.resume(); // reads the upload and never answers
        return;
      }
      if (req.url === '/hang') return; // never answers, not even a head
      // A response that starts and never ends.
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first chunk');
    });
    opaque = await startTcpServer((socket: Socket) => {
      socket.on('data', () => socket.write('more'));
      socket.once('close', () => opaqueClosed());
    });
    sidecar = await startSidecar(`${TEST_BASE}
egress:
  listen: 127.0.0.1:0
  routes:
    - { match: { host: 127.0.0.1, ports: [${upstream.port}, ${opaque.port}] } }
`);
    proxy = sidecar.egressPort!;
  });
  afterAll(async () => {
    await sidecar.close();
    await upstream.close();
    await opaque.close();
  });

  it('absolute-form: leaving mid-response aborts the upstream request', async () => {
    const closed = upstreamClosed('/stream');
    const req = httpRequest({ host: '127.0.0.1', port: proxy, path: `http://127.0.0.1:${upstream.port}/stream`, agent: false });
    req.on('error', () => undefined);
    req.on('response', (res) => res.once('data', () => req.destroy()));
    req.end();
    await closed; // bounded by the test timeout
  });

  it('absolute-form: leaving before the response head aborts the upstream request', async () => {
    const closed = upstreamClosed('/hang');
    const req = httpRequest({ host: '127.0.0.1', port: proxy, path: `http://127.0.0.1:${upstream.port}/hang`, agent: false });
    req.on('error', () => undefined);
    req.end();
    setTimeout(() => req.destroy(), 100);
    await closed;
    // Counted once, as 499 (the client left first).
    const left = () => metricValue(sidecar.admin('/metrics'), 'sidecar_requests_total', { listener: 'egress', code: '499' });
    expect(await eventually(async () => (await left()) === 1)).toBe(true);
  });

  it('absolute-form: leaving mid-upload aborts the upstream request', async () => {
    const closed = upstreamClosed('/upload');
    const req = httpRequest({
      host: '127.0.0.1',
      port: proxy,
      method: 'POST',
      path: `http://127.0.0.1:${upstream.port}/upload`,
      headers: { 'content-length': String(10 * 1024 * 1024) },
      agent: false,
    });
    req.on('error', () => undefined);
    req.write(Buffer.alloc(64 * 1024, 'x'), () => setImmediate(() => req.destroy()));
    await closed;
  });

  it('HTTP inside a CONNECT: closing the tunnel mid-response aborts the upstream request', async () => {
    const closed = upstreamClosed('/in-tunnel');
    const tunnel = await openConnect(proxy, `127.0.0.1:${upstream.port}`);
    expect(tunnel.status).toBe(200);
    tunnel.socket.once('data', () => tunnel.socket.destroy());
    tunnel.socket.resume();
    tunnel.socket.write(`GET /in-tunnel HTTP/1.1\r\nHost: 127.0.0.1:${upstream.port}\r\n\r\n`);
    await closed;
  });

  it('blind tunnel: closing the client side closes the destination connection', async () => {
    const closed = new Promise<void>((resolve) => (opaqueClosed = resolve));
    const tunnel = await openConnect(proxy, `127.0.0.1:${opaque.port}`);
    expect(tunnel.status).toBe(200);
    tunnel.socket.once('data', () => tunnel.socket.destroy());
    tunnel.socket.resume();
    tunnel.socket.write(Buffer.from([0x00, 0x01]));
    await closed;
  });
});
