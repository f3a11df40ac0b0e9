/**
 * The access-line fields users of NGINX and Envoy look for: the client's
 * address and port, its User-Agent, the HTTP version of its request, the
 * trace id of the traceparent sent upstream, and the time the upstream took
 * to answer with a head (`upstreamHeaderMs`). The sidecar runs in its own
 * process; requests come from node:http and from a raw socket (HTTP/1.0).
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessLineOf } from './helpers/egress.ts';
import { LOGGED_BASE, spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';
import { rawConversation } from './helpers/raw.ts';
import { closedPort, startHttpServer, type TestServer } from './helpers/servers.ts';

/** How long the upstream waits before its head on /slow: the line's upstreamHeaderMs cannot be less. */
const SLOW_MS = 60;

let upstream: TestServer;
let sidecar: SidecarProcess;
/** The traceparent each request id reached the upstream with. */
const seenTraceparent = new Map<string, string>();

beforeAll(async () => {
  upstream = await startHttpServer((req, res) => {
    seenTraceparent.set(String(req.headers['x-request-id']), String(req.headers.traceparent));
    req.resume();
    const answer = () => res.end('hello');
    if (req.url === '/slow') setTimeout(answer, SLOW_MS);
    else answer();
  });
  sidecar = await spawnSidecar([
    '--config',
    writeConfig(`${LOGGED_BASE}upstreams:
  app: { endpoints: [${upstream.url}] }
  dead: { endpoints: [http://127.0.0.1:${await closedPort()}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: dead, match: { path: /dead }, upstream: dead }
    - { name: app, match: { path: / }, upstream: app }
`),
  ]);
});

afterAll(async () => {
  await sidecar?.stop();
  await upstream?.close();
});

/** One GET through the ingress with node:http; resolves with the client's local port once the body is in. */
function get(path: string, headers: Record<string, string>): Promise<{ status: number; localPort: number; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    let localPort = 0;
    const req = httpRequest({ host: '127.0.0.1', port: sidecar.ingressPort, path, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, localPort, headers: res.headers }));
    });
    req.on('socket', (socket) => socket.once('connect', () => (localPort = socket.localPort ?? 0)));
    req.on('error', reject);
    req.end();
  });
}

const lineOf = (reqId: string) => accessLineOf(sidecar.lines, reqId);

describe('access line fields', () => {
  it('client address and port, user agent, HTTP version and the trace id the client sent', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const answer = await get('/a', { 'x-request-id': 'fields-1', 'user-agent': 'observe-test/1.0 (spaces "quoted")', traceparent });
    expect(answer.status).toBe(200);
    expect(seenTraceparent.get('fields-1')).toBe(traceparent);
    expect(await lineOf('fields-1')).toMatchObject({
      clientAddress: '127.0.0.1',
      clientPort: answer.localPort,
      userAgent: 'observe-test/1.0 (spaces "quoted")',
      protocol: '1.1',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    });
  });

  it('without a traceparent from the client: the trace id of the one the sidecar created and sent upstream', async () => {
    expect((await get('/b', { 'x-request-id': 'fields-2' })).status).toBe(200);
    const sent = seenTraceparent.get('fields-2');
    expect(sent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const line = await lineOf('fields-2');
    expect(line.traceId).toBe(sent!.slice(3, 35));
    expect(line.userAgent).toBeUndefined();
  });

  it('an invalid traceparent is passed on but gives no trace id', async () => {
    expect((await get('/c', { 'x-request-id': 'fields-3', traceparent: 'not-a-trace"},{"x":1' })).status).toBe(200);
    expect(seenTraceparent.get('fields-3')).toBe('not-a-trace"},{"x":1');
    expect((await lineOf('fields-3')).traceId).toBeUndefined();
  });

  it('an HTTP/1.0 request says protocol 1.0', async () => {
    const { text } = await rawConversation(sidecar.ingressPort!, 'GET /d HTTP/1.0\r\nHost: a\r\nx-request-id: fields-4\r\n\r\n');
    expect(text).toMatch(/^HTTP\/1\.[01] 200 /);
    expect(await lineOf('fields-4')).toMatchObject({ protocol: '1.0', clientAddress: '127.0.0.1' });
  });

  it('upstreamHeaderMs: the wait for the upstream\'s head, within the whole duration; absent when no upstream answered', async () => {
    expect((await get('/slow', { 'x-request-id': 'fields-5' })).status).toBe(200);
    const line = await lineOf('fields-5');
    expect(line.upstreamHeaderMs).toBeGreaterThanOrEqual(SLOW_MS - 1); // timers may fire up to 1 ms early
    expect(line.upstreamHeaderMs).toBeLessThanOrEqual(line.durationMs as number);
    expect((await get('/dead', { 'x-request-id': 'fields-6' })).status).toBe(502);
    const failed = await lineOf('fields-6');
    expect(failed.error).toBe('upstream_connect_failed');
    expect(failed.upstreamHeaderMs).toBeUndefined();
  });
});
