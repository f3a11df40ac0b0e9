/**
 * The sidecar's own answers to gRPC calls (SPEC "HTTP/2 and gRPC"): HTTP 200,
 * trailers-only (one HEADERS frame with END_STREAM), grpc-status and
 * grpc-message, and x-sidecar-error as metadata. An upstream that is down is
 * UNAVAILABLE, no route is UNIMPLEMENTED, a rate limit RESOURCE_EXHAUSTED, an
 * upstream spoken to over HTTP/1.1 UNIMPLEMENTED with protocol_mismatch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoClient, grpc, startGrpcServer, unary, type EchoClientInstance, type TestGrpcServer } from './helpers/grpc.ts';
import { h2Request, h2Session } from './helpers/h2.ts';
import { closedPort } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

describe("the sidecar's own answers to gRPC calls", () => {
  let upstream: TestGrpcServer;
  let sidecar: RunningSidecar;
  let client: EchoClientInstance;

  beforeAll(async () => {
    upstream = await startGrpcServer();
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  down: { endpoints: [http://127.0.0.1:${await closedPort()}], protocol: h2c }
  h1: { endpoints: [http://127.0.0.1:${upstream.port}] }
  ok: { endpoints: [http://127.0.0.1:${upstream.port}], protocol: h2c }
ingress:
  listen: 127.0.0.1:0
  h2c: true
  routes:
    - { name: down, match: { path: /demo.Echo/, headers: { x-to: down } }, upstream: down }
    - { name: h1, match: { path: /demo.Echo/, headers: { x-to: h1 } }, upstream: h1 }
    - { name: limited, match: { path: /demo.Echo/, headers: { x-to: limited } }, upstream: ok, rateLimit: { requests: 1, per: 1h, burst: 1 } }
    - { name: other, match: { path: /other/ }, upstream: ok }
`);
    client = echoClient(`127.0.0.1:${sidecar.sidecar.ingressPort}`);
  });
  afterAll(async () => {
    client?.close();
    await sidecar?.close();
    await upstream?.close();
  });

  const to = (where: string) => {
    const metadata = new grpc.Metadata();
    metadata.set('x-to', where);
    return metadata;
  };

  it('an upstream that is down: UNAVAILABLE, x-sidecar-error upstream_connect_failed', async () => {
    const result = await unary(client, { text: 'x' }, to('down'));
    expect(result.error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(result.error?.details).toBe('could not connect to the upstream');
    expect(result.status?.metadata.get('x-sidecar-error')).toEqual(['upstream_connect_failed']);
  });

  it('no route: UNIMPLEMENTED, x-sidecar-error no_route', async () => {
    const result = await unary(client, { text: 'x' }, to('nowhere'));
    expect(result.error?.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(result.status?.metadata.get('x-sidecar-error')).toEqual(['no_route']);
  });

  it('a rate limit: RESOURCE_EXHAUSTED once the burst is used', async () => {
    expect((await unary(client, { text: 'first' }, to('limited'))).error).toBeNull();
    const result = await unary(client, { text: 'second' }, to('limited'));
    expect(result.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(result.status?.metadata.get('x-sidecar-error')).toEqual(['rate_limited']);
  });

  it('an upstream spoken to over HTTP/1.1: refused with protocol_mismatch, not sent on', async () => {
    const result = await unary(client, { text: 'x' }, to('h1'));
    expect(result.error?.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(result.error?.details).toContain('upstreams.h1.protocol: h2c');
    expect(result.status?.metadata.get('x-sidecar-error')).toEqual(['protocol_mismatch']);
  });

  it('on the wire: HTTP 200, one HEADERS frame with END_STREAM, grpc-status and grpc-message', async () => {
    const session = await h2Session(`http://127.0.0.1:${sidecar.sidecar.ingressPort}`);
    try {
      const answer = await h2Request(session, { ':path': '/demo.Echo/Unary', ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers', 'x-to': 'down' }, Buffer.alloc(5));
      expect(answer.status).toBe(200);
      expect(answer.endStreamOnHead).toBe(true);
      expect(answer.body.length).toBe(0);
      expect(answer.trailers).toBeUndefined();
      expect(answer.headers['grpc-status']).toBe('14');
      expect(answer.headers['grpc-message']).toBe('could not connect to the upstream');
      expect(answer.headers['x-sidecar-error']).toBe('upstream_connect_failed');
    } finally {
      session.close();
    }
  });
});
