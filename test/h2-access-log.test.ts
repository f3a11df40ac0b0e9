/**
 * The access line and the metrics say which HTTP version each side spoke
 * (issue 18): `protocol` is the client's ("1.1", "2"), `upstreamProtocol`
 * the upstream's, and a gRPC call has `grpcStatus`, the upstream's or the
 * sidecar's own. `sidecar_requests_total` carries `protocol`, and
 * `sidecar_grpc_responses_total` counts gRPC answers by grpc-status.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { accessLineOf } from './helpers/egress.ts';
import { echoClient, grpc, startGrpcServer, unary, type TestGrpcServer } from './helpers/grpc.ts';
import { h2Request, h2Session } from './helpers/h2.ts';
import { LOGGED_BASE, spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';
import { metric } from './helpers/reload.ts';
import { closedPort, echoServer, type TestServer } from './helpers/servers.ts';

let app: TestServer;
let upstream: TestGrpcServer;
let sidecar: SidecarProcess;

beforeAll(async () => {
  app = await echoServer();
  upstream = await startGrpcServer({
    unary: (call, callback) =>
      call.request.text === 'missing' ? callback({ code: grpc.status.NOT_FOUND, details: 'no such thing' }) : callback(null, { text: 'ok' }),
  });
  sidecar = await spawnSidecar([
    '--config',
    writeConfig(`${LOGGED_BASE}upstreams:
  app: { endpoints: [${app.url}] }
  grpc: { endpoints: [http://127.0.0.1:${upstream.port}], protocol: h2c }
  down: { endpoints: [http://127.0.0.1:${await closedPort()}], protocol: h2c }
ingress:
  listen: 127.0.0.1:0
  h2c: true
  routes:
    - { name: down, match: { path: /demo.Echo/, headers: { x-to: down } }, upstream: down }
    - { name: grpc, match: { path: /demo.Echo/ }, upstream: grpc }
    - { name: app, match: { path: / }, upstream: app }
`),
  ]);
});

afterAll(async () => {
  await sidecar?.stop();
  await upstream?.close();
  await app?.close();
});

describe('protocol and grpcStatus in the access line and the metrics', () => {
  it('HTTP/2 from the client to an HTTP/1.1 app, and HTTP/1.1 from the client: protocol and upstreamProtocol', async () => {
    const session = await h2Session(`http://127.0.0.1:${sidecar.ingressPort}`);
    try {
      expect((await h2Request(session, { ':path': '/two', 'x-request-id': 'log-h2' })).status).toBe(200);
    } finally {
      session.close();
    }
    const h1 = await request(`http://127.0.0.1:${sidecar.ingressPort}/one`, { headers: { 'x-request-id': 'log-h1' } });
    await h1.body.dump();
    expect(await accessLineOf(sidecar.lines, 'log-h2')).toMatchObject({ protocol: '2', upstreamProtocol: '1.1', status: 200 });
    const line = await accessLineOf(sidecar.lines, 'log-h1');
    expect(line).toMatchObject({ protocol: '1.1', upstreamProtocol: '1.1' });
    expect(line.grpcStatus).toBeUndefined();
    const admin = `http://127.0.0.1:${sidecar.adminPort}`;
    expect(await metric(admin, 'sidecar_requests_total', '{listener="ingress",route="app",upstream="app",method="GET",code="200",protocol="2"}')).toBe(1);
    expect(await metric(admin, 'sidecar_requests_total', '{listener="ingress",route="app",upstream="app",method="GET",code="200",protocol="1.1"}')).toBe(1);
  });

  it("gRPC: HTTP/2 both sides, the upstream's grpc-status, and the sidecar's own", async () => {
    const client = echoClient(`127.0.0.1:${sidecar.ingressPort}`);
    try {
      const id = (value: string, to?: string) => {
        const metadata = new grpc.Metadata();
        metadata.set('x-request-id', value);
        if (to) metadata.set('x-to', to);
        return metadata;
      };
      expect((await unary(client, { text: 'fine' }, id('grpc-ok'))).error).toBeNull();
      expect((await unary(client, { text: 'missing' }, id('grpc-missing'))).error?.code).toBe(grpc.status.NOT_FOUND);
      expect((await unary(client, { text: 'x' }, id('grpc-down', 'down'))).error?.code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      client.close();
    }
    expect(await accessLineOf(sidecar.lines, 'grpc-ok')).toMatchObject({ protocol: '2', upstreamProtocol: '2', status: 200, grpcStatus: 0 });
    expect(await accessLineOf(sidecar.lines, 'grpc-missing')).toMatchObject({ status: 200, grpcStatus: 5 });
    expect(await accessLineOf(sidecar.lines, 'grpc-down')).toMatchObject({ status: 200, grpcStatus: 14, error: 'upstream_connect_failed' });
    const admin = `http://127.0.0.1:${sidecar.adminPort}`;
    expect(await metric(admin, 'sidecar_grpc_responses_total', '{listener="ingress",route="grpc",upstream="grpc",grpc_status="5"}')).toBe(1);
    expect(await metric(admin, 'sidecar_grpc_responses_total', '{listener="ingress",route="down",upstream="down",grpc_status="14"}')).toBe(1);
  });
});
