/**
 * Host (issue 20): duplicate Host headers, a missing Host on HTTP/1.1 and, on
 * ingress, a Host that disagrees with an absolute-form target are the
 * sidecar's own 400; hosts match case-insensitively and without a trailing
 * dot, on ingress and on egress (CONNECT included). Raw bytes throughout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { parseRawResponse, rawExchange } from './helpers/raw.ts';
import { openConnect, readAll } from './helpers/egress.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

function named(name: string): Promise<TestServer> {
  return startHttpServer((req, res) => {
    req.resume();
    res.end(`${name} ${req.url}`);
  });
}

const bodyOf = (answer: string) => parseRawResponse(answer).body;

describe('Host on ingress and egress', () => {
  let admin: TestServer;
  let app: TestServer;
  let sidecar: RunningSidecar;
  let ingress: number;
  let egress: number;

  beforeAll(async () => {
    [admin, app] = await Promise.all([named('admin'), named('app')]);
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  admin: { endpoints: [${admin.url}] }
  app: { endpoints: [${app.url}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: admin, match: { host: admin.example.com }, upstream: admin }
    - { name: corp, match: { host: "*.corp.test" }, upstream: admin }
    - { name: app, match: { path: / }, upstream: app }
egress:
  listen: 127.0.0.1:0
  routes:
    - { name: payments, match: { host: payments.internal }, upstream: admin }
`);
    ingress = sidecar.sidecar.ingressPort!;
    egress = sidecar.egressPort!;
  });
  afterAll(async () => {
    await sidecar?.close();
    await Promise.all([admin?.close(), app?.close()]);
  });

  const request = (port: number, target: string, headers: string) => rawExchange(port, `GET ${target} HTTP/1.1\r\n${headers}Connection: close\r\n\r\n`);

  function expectBadRequest(answer: string, what: string): void {
    const { status, headers } = parseRawResponse(answer);
    expect([status, headers['x-sidecar-error'], headers.connection], `${what}: ${answer}`).toEqual([400, 'bad_request', 'close']);
  }

  it('ingress: a trailing dot and any case still match the host route', async () => {
    for (const host of ['admin.example.com.', 'ADMIN.Example.COM.', 'admin.example.com.:80', 'x.corp.test.', 'X.CORP.test']) {
      expect(bodyOf(await request(ingress, '/x', `Host: ${host}\r\n`)), host).toBe('admin /x');
    }
    expect(bodyOf(await request(ingress, '/x', 'Host: other.example.com.\r\n'))).toBe('app /x');
  });

  it('ingress: two Host headers are 400 bad_request, same value or not', async () => {
    expectBadRequest(await request(ingress, '/x', 'Host: app.test\r\nHost: admin.example.com\r\n'), 'two hosts');
    expectBadRequest(await request(ingress, '/x', 'Host: admin.example.com\r\nhost: admin.example.com\r\n'), 'the same host twice');
  });

  it('ingress and egress: an HTTP/1.1 request without Host gets the sidecar\'s own 400', async () => {
    expectBadRequest(await request(ingress, '/x', ''), 'ingress');
    expectBadRequest(await request(egress, 'http://payments.internal/x', ''), 'egress absolute-form');
  });

  it('ingress: an absolute-form target is served when it names the Host, 400 when it does not', async () => {
    expect(bodyOf(await request(ingress, 'http://admin.example.com/a?b=1', 'Host: admin.example.com\r\n'))).toBe('admin /a?b=1');
    expect(bodyOf(await request(ingress, 'http://ADMIN.example.com.:80/a', 'Host: admin.example.com\r\n'))).toBe('admin /a');
    expectBadRequest(await request(ingress, 'http://admin.example.com/a', 'Host: app.test\r\n'), 'another host');
    expectBadRequest(await request(ingress, 'http://admin.example.com:8080/a', 'Host: admin.example.com\r\n'), 'another port');
  });

  it('egress: two Host headers are 400, in absolute-form, origin-form and inside CONNECT', async () => {
    const twice = 'Host: payments.internal\r\nHost: evil.example\r\n';
    expectBadRequest(await request(egress, 'http://payments.internal/x', twice), 'absolute-form');
    expectBadRequest(await request(egress, '/x', twice), 'origin-form');
    const tunnel = await openConnect(egress, 'payments.internal:80');
    expect(tunnel.status).toBe(200);
    const answer = readAll(tunnel.socket);
    tunnel.socket.write(`GET /x HTTP/1.1\r\n${twice}Connection: close\r\n\r\n`);
    expectBadRequest(await answer, 'inside CONNECT');
  });

  it('egress: a destination with a trailing dot or in upper case matches its route', async () => {
    expect(bodyOf(await request(egress, 'http://PAYMENTS.internal./x', 'Host: payments.internal.\r\n'))).toBe('admin /x');
    expect(bodyOf(await request(egress, '/y', 'Host: payments.internal.\r\n'))).toBe('admin /y');
    const tunnel = await openConnect(egress, 'payments.internal.:80');
    expect(tunnel.status).toBe(200);
    const answer = readAll(tunnel.socket);
    tunnel.socket.write('GET /z HTTP/1.1\r\nHost: payments.internal.\r\nConnection: close\r\n\r\n');
    expect(bodyOf(await answer)).toBe('admin /z');
  });
});
