/**
 * Behind the TLS front door the listener is the same node:http server as
 * on plain HTTP (issue 17): the slowloris guard (headersTimeout), parser
 * errors answered and counted, WebSocket upgrades (wss://), a `listen`
 * change on reload, and the graceful drain all work over TLS.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { Agent, request } from 'undici';
import { WebSocket, WebSocketServer } from 'ws';
import { parseRawResponse } from './helpers/raw.ts';
import { metric } from './helpers/reload.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { servedCertificate, TestCa, type IssuedCert } from './helpers/tls.ts';

/** Sends `text` over a new TLS connection and collects what comes back until the server closes it (or 5 s). */
function tlsExchange(port: number, ca: string, text: string): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    let received = '';
    const socket: TLSSocket = tlsConnect({ host: '127.0.0.1', port, ca }, () => socket.write(text));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text: received, closed: false });
    }, 5_000);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ text: received, closed: true });
    });
  });
}

describe('the HTTP server behind the TLS front door', () => {
  let ca: TestCa;
  let cert: IssuedCert;
  let app: TestServer;
  let wss: WebSocketServer;
  let sidecar: RunningSidecar;
  let port: number;
  let release: (() => void) | undefined;

  const config = (listen: string) => `${TEST_BASE}
upstreams: { app: { endpoints: [${app.url}] } }
ingress:
  listen: ${listen}
  headersTimeout: 300ms
  tls: { cert: ${cert.certFile}, key: ${cert.keyFile} }
  routes: [ { match: { path: / }, upstream: app, websocket: true } ]
`;

  beforeAll(async () => {
    ca = new TestCa();
    cert = ca.issue('localhost', { dns: ['localhost'], ips: ['127.0.0.1'] });
    app = await startHttpServer((req, res) => {
      req.resume();
      if (req.url === '/slow') release = () => res.end('slow done');
      else res.end('ok');
    });
    wss = new WebSocketServer({ server: app.server });
    wss.on('connection', (socket) => socket.on('message', (data) => socket.send(`echo ${String(data)}`)));
    sidecar = await startSidecar(config('127.0.0.1:0'));
    port = sidecar.sidecar.ingressPort!;
  });
  afterAll(async () => {
    await sidecar?.close();
    wss?.close();
    await app?.close();
    ca?.remove();
  });

  it('a request head that never ends gets 408 request_timeout (the slowloris guard)', async () => {
    const { text, closed } = await tlsExchange(port, ca.ca, 'GET / HTTP/1.1\r\nHost: localhost\r\n');
    const answer = parseRawResponse(text);
    expect(answer.status).toBe(408);
    expect(answer.headers['x-sidecar-error']).toBe('request_timeout');
    expect(closed).toBe(true);
  });

  it('a malformed request gets 400 bad_request and is counted', async () => {
    const admin = sidecar.admin('').replace(/\/$/, '');
    const before = await metric(admin, 'sidecar_bad_requests_total', '{listener="ingress",code="bad_request"}');
    const { text } = await tlsExchange(port, ca.ca, 'GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n');
    expect(parseRawResponse(text).headers['x-sidecar-error']).toBe('bad_request');
    expect(await metric(admin, 'sidecar_bad_requests_total', '{listener="ingress",code="bad_request"}')).toBe(before + 1);
  });

  it('a WebSocket upgrade over TLS (wss://) reaches the app', async () => {
    const ws = new WebSocket(`wss://127.0.0.1:${port}/chat`, { ca: ca.ca });
    const reply = await new Promise<string>((resolve, reject) => {
      ws.once('open', () => ws.send('hi'));
      ws.once('message', (data) => resolve(String(data)));
      ws.once('error', reject);
    });
    ws.close();
    expect(reply).toBe('echo hi');
  });

  it('a reload that moves the listener keeps it HTTPS on the new address', async () => {
    writeFileSync(sidecar.file, config('127.0.0.1:0'));
    const moved = await startSidecar(config('127.0.0.1:0'));
    // The other sidecar only found a free port for the move: it is given back first.
    const target = moved.sidecar.ingressPort!;
    await moved.close();
    writeFileSync(sidecar.file, config(`127.0.0.1:${target}`));
    const reload = await request(sidecar.admin('/reload'), { method: 'POST' });
    expect(reload.statusCode, await reload.body.text()).toBe(200);
    expect(sidecar.sidecar.ingressPort).toBe(target);
    expect(await servedCertificate(target, ca.ca)).toBe(cert.fingerprint);
    port = target;
  });

  it('a request in flight when the drain begins is answered; then the listener is gone', async () => {
    const dispatcher = new Agent({ connect: { ca: ca.ca } });
    try {
      const slow = request(`https://127.0.0.1:${port}/slow`, { dispatcher });
      for (let i = 0; i < 100 && release === undefined; i++) await new Promise((r) => setTimeout(r, 20));
      expect(release).toBeDefined();
      const stopped = sidecar.sidecar.stop(5_000);
      release!();
      const response = await slow;
      expect(response.statusCode).toBe(200);
      expect(await response.body.text()).toBe('slow done');
      await stopped;
      await expect(servedCertificate(port, ca.ca)).rejects.toThrow();
    } finally {
      await dispatcher.close();
    }
  });
});
