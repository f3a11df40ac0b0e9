/**
 * Requests that Node's HTTP parser (or its header and request timeouts)
 * rejects never reach a request handler; they must still be visible: an
 * access line with what is known (client address and port, listener, status,
 * code), `sidecar_requests_total` with no route, and
 * `sidecar_bad_requests_total{listener,code}`. On ingress, on egress and on
 * HTTP carried inside a CONNECT tunnel. The sidecar runs in its own process;
 * each raw connection's local port finds its access line (`clientPort`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessLineOf, accessLines, eventually, openConnect, readAll } from './helpers/egress.ts';
import { metricValue } from './helpers/misbehave.ts';
import { LOGGED_BASE, spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';
import { rawConversation } from './helpers/raw.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';

let upstream: TestServer;
let sidecar: SidecarProcess;

/** /stream answers at once and keeps its body open (without reading the request body); anything else answers once the body is in. */
function upstreamHandler(req: IncomingMessage, res: ServerResponse): void {
  if (req.url === '/stream') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first chunk;');
    const timer = setTimeout(() => res.end('last chunk'), 5_000);
    res.once('close', () => clearTimeout(timer));
    return;
  }
  req.resume();
  req.on('end', () => res.end('ok'));
}

beforeAll(async () => {
  upstream = await startHttpServer(upstreamHandler);
  sidecar = await spawnSidecar([
    '--config',
    writeConfig(`${LOGGED_BASE}upstreams:
  app: { endpoints: [${upstream.url}] }
ingress:
  listen: 127.0.0.1:0
  headersTimeout: 500ms
  requestTimeout: 1500ms
  routes:
    - { name: small, match: { path: /small }, upstream: app, maxBody: 10 }
    - { name: app, match: { path: / }, upstream: app }
egress:
  listen: 127.0.0.1:0
  headersTimeout: 500ms
  routes:
    - { name: payments, match: { host: payments.internal }, upstream: app }
`),
  ]);
});

afterAll(async () => {
  await sidecar?.stop();
  await upstream?.close();
});

const metrics = () => `http://127.0.0.1:${sidecar.adminPort}/metrics`;

async function lineFrom(clientPort: number): Promise<Record<string, unknown>> {
  return eventually(() => accessLines(sidecar.lines).find((line) => line.clientPort === clientPort));
}

const badRequests = (listener: string, code: string) => metricValue(metrics(), 'sidecar_bad_requests_total', { listener, code });
/** `method` is empty when the parser could not read the head, known when the listener refused a parsed one. */
const unrouted = (listener: string, status: number, method = '') =>
  metricValue(metrics(), 'sidecar_requests_total', { listener, route: '', upstream: '', method, code: String(status) });

/** The request id the answer carries: the same as its access line's. */
const answerId = (text: string) => /\r\nx-request-id: ([^\r]+)\r\n/i.exec(text)?.[1];

describe('requests the parser rejects are logged and counted', () => {
  const cases = [
    { name: 'a malformed request line', data: 'GARBAGE\r\n\r\n', status: 400, code: 'bad_request' },
    { name: 'headers over maxHeaderSize', data: `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'b'.repeat(20 * 1024)}\r\n\r\n`, status: 431, code: 'headers_too_large' },
    { name: 'a transfer coding other than chunked', data: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n', status: 501, code: 'not_implemented' },
    { name: 'a head slower than headersTimeout', data: 'GET / HTTP/1.1\r\nHost: a\r\n', status: 408, code: 'request_timeout' },
    // Refused by the listener (net/request-head.ts) rather than by Node's parser: just as visible.
    { name: 'two Host headers', data: 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', status: 400, code: 'bad_request', method: 'GET' },
    { name: 'an HTTP/1.1 request without Host', data: 'GET / HTTP/1.1\r\n\r\n', status: 400, code: 'bad_request', method: 'GET' },
    { name: 'a coding that Node passes but is not chunked', data: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n', status: 501, code: 'not_implemented', method: 'POST' },
  ];

  for (const listener of ['ingress', 'egress'] as const) {
    for (const { name, data, status, code, method } of cases) {
      it(`${listener}: ${name} -> ${status} ${code}`, async () => {
        const port = listener === 'ingress' ? sidecar.ingressPort! : sidecar.egressPort!;
        const [bad, total] = [await badRequests(listener, code), await unrouted(listener, status, method)];
        const { text, localPort } = await rawConversation(port, data, { timeoutMs: 5_000 });
        expect(text).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
        const line = await lineFrom(localPort);
        expect(line).toMatchObject({ level: status >= 500 ? 'warn' : 'info', listener, status, error: code, route: '', upstream: '', clientAddress: '127.0.0.1', clientPort: localPort });
        expect(line.reqId).toBe(answerId(text));
        expect(line.bytesOut).toBe(text.length - text.indexOf('\r\n\r\n') - 4);
        expect(await badRequests(listener, code)).toBe(bad + 1);
        expect(await unrouted(listener, status, method)).toBe(total + 1);
      });
    }
  }

  it('HTTP inside a CONNECT tunnel: headers over the limit -> 431, logged on egress', async () => {
    const before = await badRequests('egress', 'headers_too_large');
    const tunnel = await openConnect(sidecar.egressPort!, 'payments.internal:80');
    expect(tunnel.status).toBe(200);
    const localPort = tunnel.socket.localPort!;
    const answer = readAll(tunnel.socket);
    tunnel.socket.write(`GET /x HTTP/1.1\r\nHost: payments.internal\r\nX-Big: ${'b'.repeat(20 * 1024)}\r\n\r\n`);
    const text = await answer;
    expect(text).toMatch(/^HTTP\/1\.1 431 /);
    const line = await lineFrom(localPort);
    expect(line).toMatchObject({ listener: 'egress', status: 431, error: 'headers_too_large', route: '', clientAddress: '127.0.0.1' });
    expect(line.reqId).toBe(answerId(text));
    expect(await badRequests('egress', 'headers_too_large')).toBe(before + 1);
  });

  it('a body slower than requestTimeout: the request in flight gets the 408, with its route and request id', async () => {
    const before = await badRequests('ingress', 'request_timeout');
    const head = 'POST /upload HTTP/1.1\r\nHost: a\r\nx-request-id: slow-body\r\nContent-Length: 100\r\n\r\n';
    const { text } = await rawConversation(sidecar.ingressPort!, [head, 'only a few bytes'], { timeoutMs: 6_000 });
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(answerId(text)).toBe('slow-body');
    const line = await accessLineOf(sidecar.lines, 'slow-body');
    expect(line).toMatchObject({ status: 408, error: 'request_timeout', route: 'app', bytesIn: 'only a few bytes'.length });
    expect(line.aborted).toBeUndefined();
    expect(await badRequests('ingress', 'request_timeout')).toBe(before + 1);
  });

  it('a request timeout after the response began cuts the connection: no 408 inside the body', async () => {
    const head = 'POST /stream HTTP/1.1\r\nHost: a\r\nx-request-id: streaming\r\nContent-Length: 100\r\n\r\n';
    const { text } = await rawConversation(sidecar.ingressPort!, [head, 'partial'], { timeoutMs: 6_000 });
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(text).toContain('first chunk;');
    expect(text.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    const line = await accessLineOf(sidecar.lines, 'streaming');
    expect(line).toMatchObject({ status: 200, aborted: true });
  });

  it('over the URI limit (414) and over a route\'s maxBody (413) count as bad requests too', async () => {
    const [uri, body] = [await badRequests('ingress', 'uri_too_long'), await badRequests('ingress', 'payload_too_large')];
    const long = await rawConversation(sidecar.ingressPort!, `GET /${'u'.repeat(9 * 1024)} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
    expect(long.text).toMatch(/^HTTP\/1\.1 414 /);
    const large = await rawConversation(sidecar.ingressPort!, 'POST /small HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 100\r\n\r\n');
    expect(large.text).toMatch(/^HTTP\/1\.1 413 /);
    expect(await badRequests('ingress', 'uri_too_long')).toBe(uri + 1);
    expect(await badRequests('ingress', 'payload_too_large')).toBe(body + 1);
    expect(await lineFrom(long.localPort)).toMatchObject({ status: 414, error: 'uri_too_long' });
  });

  it('a connection that never sends a byte is answered 408 but is no request: no line, no count', async () => {
    const before = await badRequests('ingress', 'request_timeout');
    const idle = await rawConversation(sidecar.ingressPort!, [], { timeoutMs: 5_000 });
    expect(idle.text).toMatch(/^HTTP\/1\.1 408 /);
    // A request after it is logged: once its line is there, the idle connection's would have been too.
    const after = await rawConversation(sidecar.ingressPort!, 'GARBAGE\r\n\r\n');
    await lineFrom(after.localPort);
    expect(accessLines(sidecar.lines).some((line) => line.clientPort === idle.localPort)).toBe(false);
    expect(await badRequests('ingress', 'request_timeout')).toBe(before);
  });
});
